"""Conversion of a tf_keras model to a deployable file."""
