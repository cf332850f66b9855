"""Generator designs by name: the training recipe's `architecture`."""

import functools

from keras_deblur.models.generator import build_generator
from keras_deblur.models.mobile_generator import build_mobile_generator
from keras_deblur.models.mobile_unet_generator import build_mobile_unet_generator
from keras_deblur.models.mobile_v1_generator import build_mobile_v1_generator

# The paper's, the mobile one (the design study's winner), its study variant
# without channel attention, the first shipped mobile design, and a U-Net candidate.
GENERATOR_BUILDERS = {
    "resnet": build_generator,
    "mobile": build_mobile_generator,
    "mobile_plain": functools.partial(build_mobile_generator, channel_attention=False),
    "mobile_v1": build_mobile_v1_generator,
    "mobile_unet": build_mobile_unet_generator,
}
