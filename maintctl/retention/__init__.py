"""retention's mechanics: the rules file, the table a rule walks and by which key, the rows another still
refers to, and the deleting pass."""
