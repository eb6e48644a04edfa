# Pure-Python stand-in for pycocotools.mask, box part only: iou(dt, gt, iscrowd) as in
# PythonAPI/pycocotools/_mask.pyx `iou` (input checks, [] when either side is empty, result shape (m, n))
# and common/maskApi.c `bbIou` (the same float64 operations in the same order), ppwwyyxx/cocoapi@ac87f50.
import numpy as np


def _preproc(objs):
    if len(objs) == 0:
        return objs
    if type(objs) == np.ndarray:
        if len(objs.shape) == 1:
            objs = objs.reshape((objs[0], 1))
        if not len(objs.shape) == 2 or not objs.shape[1] == 4:
            raise Exception('numpy ndarray input is only for *bounding boxes* and should have Nx4 dimension')
        return objs.astype(np.double)
    if type(objs) == list:
        isbox = np.all(np.array([(len(obj) == 4) and ((type(obj) == list) or (type(obj) == np.ndarray)) for obj in objs]))
        if not isbox:
            raise Exception('this stand-in supports bounding boxes (Nx4) only')
        objs = np.array(objs, dtype=np.double)
        if len(objs.shape) == 1:
            objs = objs.reshape((1, objs.shape[0]))
        return objs
    raise Exception('unrecognized type.  The following type: RLEs (rle), np.ndarray (box), and list (box) are supported.')


def _bbIou(dt, gt, m, n, iscrowd):
    # maskApi.c: o[g*m+d]; returned reshaped (m, n) in Fortran order, i.e. o[d, g]
    o = np.zeros((m, n), dtype=np.double)
    for g in range(n):
        G = gt[g]
        ga = float(G[2]) * float(G[3])
        crowd = bool(iscrowd[g])
        for d in range(m):
            D = dt[d]
            da = float(D[2]) * float(D[3])
            w = min(float(D[2]) + float(D[0]), float(G[2]) + float(G[0])) - max(float(D[0]), float(G[0]))
            if w <= 0:
                continue
            h = min(float(D[3]) + float(D[1]), float(G[3]) + float(G[1])) - max(float(D[1]), float(G[1]))
            if h <= 0:
                continue
            i = w * h
            u = da if crowd else da + ga - i
            o[d, g] = i / u
    return o


def iou(dt, gt, pyiscrowd):
    iscrowd = np.array(pyiscrowd, dtype=np.uint8)
    dt = _preproc(dt)
    gt = _preproc(gt)
    m = len(dt)
    n = len(gt)
    if m == 0 or n == 0:
        return []
    if not type(dt) == type(gt):
        raise Exception('The dt and gt should have the same data type, either RLEs, list or np.ndarray')
    if not len(pyiscrowd) == n:
        raise Exception('iscrowd should have the same length as gt')
    return _bbIou(dt, gt, m, n, iscrowd)
