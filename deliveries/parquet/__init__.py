"""The Parquet engine: the archive read, entries shaped into the tiers' Arrow batches, Parquet
written, spliced and read back. Plain Python and pyarrow, no database and no settings: the jobs
(``deliveries.build`` and ``daily_file``, ``deliveries.mtd``) pass in what they decide. The
contract it follows is ``deliveries.tiers``."""
