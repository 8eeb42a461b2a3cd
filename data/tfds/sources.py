"""Where a TFDS builder gets its files: the manual folder if one is given, else the network.

Offline, `download_config=tfds.download.DownloadConfig(manual_dir=FOLDER, try_download_gcs=False)`
points a builder at a folder laid out like `shared/data/<corpus>`; nothing is downloaded and no GCS
bucket is consulted. Online (no manual folder), the canonical public URLs are downloaded (gzip
files are decompressed) and TFDS records their checksums.

#### References
No mathematics here. TFDS, "Manual download", https://www.tensorflow.org/datasets/add_dataset.
"""
from __future__ import annotations

from collections.abc import Mapping

import tensorflow_datasets as tfds
from etils import epath

from data.errors import CorpusNotFoundError


def fetch(dl_manager: tfds.download.DownloadManager,
          files: Mapping[str, str]) -> dict[str, epath.Path]:
    """Paths of `files` (path in the corpus folder → public URL).

    Raises:
      CorpusNotFoundError: a manual folder is given but lacks some of the files.
    """
    try:
        folder = dl_manager.manual_dir
    except AssertionError:  # no manual folder (or an empty one): download
        return dict(dl_manager.download_and_extract(dict(files)))
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise CorpusNotFoundError(f"manual folder {folder} lacks {', '.join(missing)}; it must be "
                                  f"laid out like shared/data/<corpus> with {', '.join(files)}")
    return {name: folder / name for name in files}
