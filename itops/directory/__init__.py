"""Directory: Joiners, movers and leavers, kept in step with the directory."""
