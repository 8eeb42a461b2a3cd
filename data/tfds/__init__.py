"""TFDS builders of tflv's corpora: `ptb`, `news20` (configs `nvdm`, `prodlda`), `conll2000`,
`multi30k`. Each reuses the parsers of `data.readers` and the file layout of its corpus module.

    builder = data.tfds.Conll2000(data_dir=OUT)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir="shared/data/conll2000", try_download_gcs=False))   # offline
    builder.download_and_prepare()                                      # online

#### References
TFDS, "Writing custom datasets", https://www.tensorflow.org/datasets/add_dataset.
"""
from data.tfds.conll2000 import Conll2000
from data.tfds.multi30k import Multi30k
from data.tfds.news20 import News20
from data.tfds.ptb import Ptb

__all__ = ["Conll2000", "Multi30k", "News20", "Ptb"]
