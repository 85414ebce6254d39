"""Real client libraries an app uses to run the artifact, run as checks in environments of their own
(``env.py``): MediaPipe Tasks' TextClassifier (``mediapipe.py``)."""
