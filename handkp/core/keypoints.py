"""The 21 hand keypoints (MediaPipe order), their skeleton and the dataset's image size."""

IMAGE_SIZE = 224  # px, the dataset's native square size and the network input

KEYPOINT_NAMES = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# A mirrored hand keeps every keypoint's identity: the flip map is the identity.
FLIP_INDEX = tuple(range(NUM_KEYPOINTS))

SKELETON = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (0, 5),
    (5, 6),
    (6, 7),
    (7, 8),
    (5, 9),
    (9, 10),
    (10, 11),
    (11, 12),
    (9, 13),
    (13, 14),
    (14, 15),
    (15, 16),
    (13, 17),
    (0, 17),
    (17, 18),
    (18, 19),
    (19, 20),
)

# The finger each keypoint belongs to, for colouring drawings and grouping tables.
FINGER_OF = (
    "palm",
    "thumb",
    "thumb",
    "thumb",
    "thumb",
    "index",
    "index",
    "index",
    "index",
    "middle",
    "middle",
    "middle",
    "middle",
    "ring",
    "ring",
    "ring",
    "ring",
    "pinky",
    "pinky",
    "pinky",
    "pinky",
)
