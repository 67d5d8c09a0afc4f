"""The dataset: fetch, validation and the keypoint table, the decoded-image cache, augmentation, hand-free images."""
