"""One file per paper; importing this package registers every model."""

from videozoo.models import (  # noqa: F401  (imported for their registrations)
    c3d,
    i3d,
    mtv,
    swin,
    tdn,
    tea,
    timesformer,
    transformer,
    tsm,
    tsn,
    two_stream,
    uniformer,
    uniformerv2,
    video_chatgpt,
    video_swin,
    videochat,
    vit,
    vivit,
)
