"""Compiler passes: each a plain function from Graph to Graph (one verb per module); the pipeline checks after each."""
