# A small TSM (2-D ResNet-18 with temporal shift) for tests: 4 segments of one frame at 64 px, 5 classes.
model = dict(
    type="Recognizer2D",
    backbone=dict(type="ResNetTSM", depth=18, pretrained=None, num_segments=4, shift_div=8, norm_eval=False),
    cls_head=dict(type="TSMHead", num_classes=5, in_channels=512, num_segments=4, spatial_type="avg",
                  consensus=dict(type="AvgConsensus", dim=1), dropout_ratio=0.5, is_shift=True,
                  average_clips="prob"),
    data_preprocessor=dict(type="ActionDataPreprocessor", mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape="NCHW"))
val_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=4, test_mode=True),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(-1, 72)),
    dict(type="CenterCrop", crop_size=64),
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]
