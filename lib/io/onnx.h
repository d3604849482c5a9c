/* ONNX import: a model file becomes layer sections of a config (the same cfg an INI file
 * gives, so graph, shapes, memory planning, training and checkpoints work unchanged) plus
 * its initializers, written into the net's tensors by name once the net is allocated. The
 * protobuf code is generated at build time by protoc-c from ONNX's own onnx.proto. */
#ifndef DLCL_ONNX_H
#define DLCL_ONNX_H

#include "config.h"

struct dlcl_net;

/* Called by cfg_load_with on an expanded config: if [net] model = FILE (relative to the
 * config's directory) is set, appends a section per ONNX node, fills [net] input, classes,
 * output and batch where the config does not set them, and attaches the weights to c->model.
 * Nothing to do without model=. An unsupported operator, attribute or dynamic shape is
 * DLCL_ERR_CONFIG, a malformed file DLCL_ERR_DATA, each naming the node and what is wrong. */
dlcl_status onnx_import_config(cfg *c);
/* A config for a bare model path: [net] model = path, and an empty [data] (so that
 * --set data.scale=... applies). */
dlcl_status onnx_bare_config(const char *path, cfg *out);
/* Writes the weights attached to net->cfg.model into the net's regions (after
 * net_init_params), then frees them. Nothing to do when there are none. */
dlcl_status onnx_weights_apply(struct dlcl_net *net);
void onnx_weights_free(struct onnx_weights *w);

#endif
