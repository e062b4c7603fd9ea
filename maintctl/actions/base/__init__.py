"""The shapes actions are done in (kinds: the Action protocol, Batched, Single), the batch loop, the
due-row helpers, the progress bar and when a due row next comes due."""
