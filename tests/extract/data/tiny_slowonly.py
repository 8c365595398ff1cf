# A small SlowOnly-style 3-D recognizer for tests: ResNet-18 3-D, 4 frames at 64 px, 5 classes.
model = dict(
    type="Recognizer3D",
    backbone=dict(type="ResNet3dSlowOnly", depth=18, pretrained=None, lateral=False, conv1_kernel=(1, 7, 7),
                  conv1_stride_t=1, pool1_stride_t=1, inflate=(0, 0, 1, 1), norm_eval=False, base_channels=8),
    cls_head=dict(type="I3DHead", in_channels=64, num_classes=5, spatial_type="avg", dropout_ratio=0.5,
                  average_clips="prob"),
    data_preprocessor=dict(type="ActionDataPreprocessor", mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape="NCTHW"))
val_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=4, frame_interval=4, num_clips=1, test_mode=True),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(-1, 72)),
    dict(type="CenterCrop", crop_size=64),
    dict(type="FormatShape", input_format="NCTHW"),
    dict(type="PackActionInputs"),
]
test_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=4, frame_interval=4, num_clips=2, test_mode=True),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(-1, 64)),
    dict(type="ThreeCrop", crop_size=64),
    dict(type="FormatShape", input_format="NCTHW"),
    dict(type="PackActionInputs"),
]
