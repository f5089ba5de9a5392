/* A walk over the protobuf wire format of a model file before protobuf-c unpacks it. protobuf-c
 * recurses once per nested message with no depth limit (a TypeProto nested thousands of levels
 * deep overflows the stack) and allocates a whole C struct for every message however small its
 * encoding (a 2-byte empty initializer becomes hundreds of bytes). This walk follows the same
 * schema descriptors protobuf-c uses, refuses nesting deeper than ECP_ONNX_MAX_DEPTH, and adds
 * up what the unpack will allocate so that the memory budget can refuse it first. Each byte is
 * visited once: the walk is linear in the file size. */
#include "onnx_util.h"

/* What protobuf-c allocates besides the payload, per block (malloc's own header), and per
 * field occurrence while it unpacks (its scanned-member slabs, freed at the end). */
#define SCAN_BLOCK_OVERHEAD 16
#define SCAN_MEMBER_BYTES 40

typedef struct {
    const char *path;
    ecp_error *err;
    uint64_t bytes; /* estimated allocation of the unpacked message */
} scan_ctx;

static ecp_status corrupt(scan_ctx *c)
{
    return ecp_fail(c->err, ECP_ERR_FORMAT, "%s: not an ONNX model or corrupt protobuf", c->path);
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        if (shift < 64)
            x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

/* Bytes of one element of a repeated field in protobuf-c's arrays. */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

/* Elements in a packed run of a scalar field of `len` bytes. */
static uint64_t packed_count(ProtobufCType t, const uint8_t *p, size_t len)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
        return len / 4;
    case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return len / 8;
    default: {
        uint64_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += !(p[i] & 0x80);
        return n;
    }
    }
}

static ecp_status scan_message(scan_ctx *c, const ProtobufCMessageDescriptor *d,
                               const uint8_t *p, size_t len, int depth, const char *via);

/* One length-delimited field: a nested message, a string or bytes, a packed array, or an
 * unknown field (kept by protobuf-c as a copy). */
static ecp_status scan_delimited(scan_ctx *c, const ProtobufCFieldDescriptor *f,
                                 const uint8_t *p, size_t n, int depth)
{
    if (!f) {
        c->bytes += sizeof(ProtobufCMessageUnknownField) + n + SCAN_BLOCK_OVERHEAD;
        return ECP_OK;
    }
    int rep = f->label == PROTOBUF_C_LABEL_REPEATED;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        c->bytes += rep ? elem_size(f->type) : 0;
        return scan_message(c, f->descriptor, p, n, depth + 1, f->name);
    case PROTOBUF_C_TYPE_STRING:
        c->bytes += n + 1 + SCAN_BLOCK_OVERHEAD + (rep ? elem_size(f->type) : 0);
        return ECP_OK;
    case PROTOBUF_C_TYPE_BYTES:
        c->bytes += n + SCAN_BLOCK_OVERHEAD + (rep ? elem_size(f->type) : 0);
        return ECP_OK;
    default:
        c->bytes += (rep ? packed_count(f->type, p, n) : 1) * elem_size(f->type);
        return ECP_OK;
    }
}

static ecp_status scan_message(scan_ctx *c, const ProtobufCMessageDescriptor *d,
                               const uint8_t *p, size_t len, int depth, const char *via)
{
    if (depth > ECP_ONNX_MAX_DEPTH)
        return ecp_fail(c->err, ECP_ERR_FORMAT,
                        "%s: nesting deeper than %d levels (field '%s', a %s); refusing to "
                        "unpack it", c->path, ECP_ONNX_MAX_DEPTH, via, d->short_name);
    const uint8_t *end = p + len;
    /* Occurrences of each repeated message or string field, capped: a graph's lists are a
     * few thousand entries long, and a million empty ones cost more than their bytes suggest. */
    uint32_t seen[64] = {0};
    c->bytes += d->sizeof_message + SCAN_BLOCK_OVERHEAD;
    while (p < end) {
        uint64_t tag, v;
        if (!read_varint(&p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
            return corrupt(c);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
        c->bytes += SCAN_MEMBER_BYTES;
        size_t k = f ? (size_t)(f - d->fields) : 0;
        if (f && f->label == PROTOBUF_C_LABEL_REPEATED && k < 64 &&
            (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING ||
             f->type == PROTOBUF_C_TYPE_BYTES) && ++seen[k] > ECP_ONNX_MAX_VALUES)
            return ecp_fail(c->err, ECP_ERR_UNSUPPORTED,
                            "%s: more than %d '%s' entries in a %s (at most %d supported)",
                            c->path, ECP_ONNX_MAX_VALUES, f->name, d->short_name,
                            ECP_ONNX_MAX_VALUES);
        if (!f)
            c->bytes += sizeof(ProtobufCMessageUnknownField) + SCAN_BLOCK_OVERHEAD;
        else if (f->label == PROTOBUF_C_LABEL_REPEATED && (tag & 7) != 2)
            c->bytes += elem_size(f->type);
        switch (tag & 7) {
        case 0:
            if (!read_varint(&p, end, &v))
                return corrupt(c);
            break;
        case 1:
        case 5: {
            size_t w = (tag & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < w)
                return corrupt(c);
            p += w;
            break;
        }
        case 2: {
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return corrupt(c);
            ecp_status s = scan_delimited(c, f, p, (size_t)v, depth);
            if (s)
                return s;
            p += v;
            break;
        }
        default: /* groups (3, 4) are not in the ONNX schema; protobuf-c rejects them too */
            return corrupt(c);
        }
    }
    return ECP_OK;
}

ecp_status ecp_onnx_prescan(const uint8_t *buf, size_t len, const char *path, uint64_t *bytes,
                            ecp_error *err)
{
    scan_ctx c = {.path = path, .err = err, .bytes = 0};
    ecp_status s = scan_message(&c, &onnx__model_proto__descriptor, buf, len, 0, "model");
    *bytes = c.bytes;
    return s;
}
