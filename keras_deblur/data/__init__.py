"""Data: image files, motion-blur synthesis and tf.data pipelines."""
