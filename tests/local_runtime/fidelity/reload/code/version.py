VERSION = "first"
