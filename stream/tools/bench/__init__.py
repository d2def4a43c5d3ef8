"""`streamrec bench`: raw model speed per backend and precision, the pipeline end to end, agreement with fp32."""
