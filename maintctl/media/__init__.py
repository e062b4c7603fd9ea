"""Media files: the deletion queue and deletion after commit, where a path leads, which memories use a file,
and copying the media directory beside a backup."""
