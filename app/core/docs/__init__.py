"""The docs: from a folder of files to passages a question can find.

`documents` (and `mdx`) load each file type into text; `chunking` cuts structure-aware
chunks; `embeddings` is the bundled sentence-transformers model; `store` is the only module
that imports chromadb; `ingest` keeps the store in step with a folder, incrementally, and
yields events; `retrieval` is the one path from questions to their vectors and passages.
"""
