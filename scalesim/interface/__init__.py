"""Interface layer: command line, scenario files and figures (thin: parse -> library call -> files)."""
