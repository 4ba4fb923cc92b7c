"""The node agent: runs on a GPU host, discovers its GPUs, drives its container engine. Imports nothing of the server."""
