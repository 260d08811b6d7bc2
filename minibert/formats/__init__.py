"""One file per weight format, each reading a stranger's file into NumPy arrays without that format's framework.

A new format is one reader here, one name in model_files.WEIGHT_FILES, and one entry in checkpoint.READERS.
"""
