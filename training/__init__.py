"""Training: frozen backbone -> cached deep features -> linear head -> one ONNX model.

Importing this package is cheap; torch and friends are imported by the modules that need them.
"""
