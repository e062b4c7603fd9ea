"""The shapes actions are done in (kinds: the Action protocol, Single, OwnPass; batches: Batched and its
loop), the due-row helpers, the progress bar and when a due row next comes due."""
