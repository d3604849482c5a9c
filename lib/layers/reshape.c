/* Layers that only rename data: they run no kernel, and their readers read the buffer of
 * their input (LAYER_ALIAS; the graph resolves them, see lib/net/graph.c).
 *   [name] type=identity           y = x, as nn.Identity
 *   [name] type=flatten            y = x viewed as one dimension, as nn.Flatten */
#include "layer.h"

static const char *const no_keys[] = {NULL};

static dlcl_status no_parse(layer *l, const cfg *c, const cfg_section *s)
{
    (void)l, (void)c, (void)s;
    return DLCL_OK;
}

static dlcl_status identity_shape(layer *l)
{
    l->out = l->in[0];
    return DLCL_OK;
}

static dlcl_status flatten_shape(layer *l)
{
    l->out = layer_shape_vec((int)layer_shape_numel(l->in[0]));
    l->out.dtype = l->in[0].dtype;
    return DLCL_OK;
}

/* Never called for an alias: the graph skips it. */
static dlcl_status no_pass(layer *l, const layer_io *io)
{
    (void)l, (void)io;
    return DLCL_OK;
}

const layer_type layer_identity = {"identity", no_keys, 1, 1, LAYER_ALIAS | LAYER_STEPS, no_parse, identity_shape, NULL,
                                   no_pass, no_pass, NULL, NULL, NULL, NULL};
const layer_type layer_flatten = {"flatten", no_keys, 1, 1, LAYER_ALIAS, no_parse, flatten_shape, NULL,
                                  no_pass, no_pass, NULL, NULL, NULL, NULL};
