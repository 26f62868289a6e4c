"""The numeric core: gate names, weight layouts, statistics, activations, penalty formula.

Plain Python and numpy. Nothing here imports TensorFlow, Keras, torch or
TensorBoard, nor any other part of the package: every wing builds on it.
"""
