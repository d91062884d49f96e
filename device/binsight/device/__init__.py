"""The camera agent: OpenCV capture -> ONNX Runtime -> readings over MQTT, with a disk outbox.

Needs only ``binsight`` + ``binsight-device``: no torch, no scikit-learn.
"""
