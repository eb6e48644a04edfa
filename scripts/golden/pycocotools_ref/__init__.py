# pycocotools 2.0.11 (ppwwyyxx/cocoapi@ac87f5077ad6b8864c2dc5e93d14cae62d1db05a, PythonAPI/pycocotools), vendored as the
# reference for emkit's COCO box evaluation: coco.py and cocoeval.py are unmodified copies (license.txt: Simplified
# BSD, Piotr Dollar and Tsung-Yi Lin). The compiled _mask extension cannot be built here (no PyPI), so mask.py is a
# pure-Python transcription of the one function box evaluation calls, maskUtils.iou (_mask.pyx iou + maskApi.c bbIou).
