/*
 * codedump.c — a code-object tree as text or JSON (codedump.h).
 *
 * Version independence comes from pyc_marshal_code, which maps each
 * version's TYPE_CODE layout (Python/marshal.c r_object) onto one set of
 * named fields. Constants are shown as Python's repr would show them where
 * that is simple and exact: ints in decimal (marshal's 15-bit digits
 * converted here), floats by the shortest "%.*g" that reads back to the
 * same double (repr's rule, float_repr_style 'short'), str and bytes with
 * Python's escapes. 2.7's str (marshal 's' and 't') is shown as text, as it
 * is the text type there.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/codedump.h"
#include "engine/output.h"

static bool is_text(int type)
{
    return type && strchr("tuaAzZsR", type) != NULL;
}

/* Objects shown per dump. Back-references make the tree a DAG, which a
 * hostile body can make exponential when unfolded (a tuple holding two
 * references to the tuple before it, 100 deep); past this many objects the
 * rest is shown as "...". The command line is single-threaded: one dump at
 * a time. */
#define DUMP_BUDGET 2000000
static long budget;

static bool spend(void)
{
    return budget-- > 0;
}

/* 2.7's str is marshal 's' (and 't'): the text type there. */
static bool py2(const pyc_marshal_tree *t)
{
    return pyc_marshal_magic(t)->major == 2;
}

/* Decimal digits of the marshal long O (sign and 15-bit digits) into BUF. */
static void long_decimal(const pyc_object *o, FILE *f)
{
    size_t n = o->size / 2;
    if (n == 0) {
        fputs("0", f);
        return;
    }
    uint32_t *d = malloc(n * sizeof *d);
    char *out = malloc(n * 5 + 2);
    if (!d || !out) {
        free(d);
        free(out);
        fputs("<int>", f);
        return;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = (uint32_t)(o->data[2 * i] | o->data[2 * i + 1] << 8);
    size_t len = 0, top = n;
    while (top > 0) {
        /* Divide the base-2^15 number by 10 (most significant first). */
        uint32_t rem = 0;
        for (size_t i = top; i-- > 0;) {
            uint32_t cur = rem << 15 | d[i];
            d[i] = cur / 10;
            rem = cur % 10;
        }
        out[len++] = (char)('0' + rem);
        while (top > 0 && d[top - 1] == 0)
            top--;
    }
    if (o->value < 0)
        fputc('-', f);
    while (len)
        fputc(out[--len], f);
    free(d);
    free(out);
}

static void float_repr(double v, FILE *f)
{
    if (isnan(v)) {
        fputs("nan", f);
        return;
    }
    if (isinf(v)) {
        fputs(v < 0 ? "-inf" : "inf", f);
        return;
    }
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
    if (!strpbrk(buf, ".en"))
        fputs(".0", f);
}

static double binary_double(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Python's repr escapes for a str (QUOTE ') or bytes. */
static void quoted(FILE *f, const unsigned char *s, size_t n, bool bytes)
{
    if (bytes)
        fputc('b', f);
    fputc('\'', f);
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c == '\'' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80))
            fprintf(f, "\\x%02x", c);
        else
            fputc((int)c, f);
    }
    fputc('\'', f);
}

/* S with control characters and non-ASCII bytes escaped, no quotes. */
static void escaped(FILE *f, const pyc_object *o)
{
    for (size_t i = 0; i < o->size; i++) {
        unsigned c = o->data[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            fprintf(f, "\\x%02x", c);
        else
            fputc((int)c, f);
    }
}

static void hex(FILE *f, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", s[i]);
}

/* repr of a constant, code objects as <code NAME>. */
static void repr(FILE *f, const pyc_marshal_tree *t, const pyc_object *o, int depth)
{
    o = pyc_marshal_resolve(t, o);
    if (depth > 100 || !spend()) {
        fputs("...", f);
        return;
    }
    switch (o->type) {
    case '0': fputs("<NULL>", f); return;
    case 'N': fputs("None", f); return;
    case 'T': fputs("True", f); return;
    case 'F': fputs("False", f); return;
    case '.': fputs("Ellipsis", f); return;
    case 'S': fputs("StopIteration", f); return;
    case 'i': case 'I': fprintf(f, "%" PRId64, o->value); return;
    case 'l': long_decimal(o, f); return;
    case 'g': float_repr(binary_double(o->data), f); return;
    case 'f': fwrite(o->data, 1, o->size, f); return;
    case 'y':
        fputc('(', f);
        float_repr(binary_double(o->data), f);
        fputc('+', f);
        float_repr(binary_double(o->data + 8), f);
        fputs("j)", f);
        return;
    case 'x': fputs("complex(", f); fwrite(o->data, 1, o->size, f); fputc(')', f); return;
    case '(': case ')': case '[': case '<': case '>': {
        const char *open = o->type == '[' ? "[" : o->type == '<' ? "{" :
                           o->type == '>' ? "frozenset({" : "(";
        const char *close = o->type == '[' ? "]" : o->type == '<' ? "}" :
                            o->type == '>' ? "})" : "";
        if (o->type == '>' && o->count == 0) {
            fputs("frozenset()", f);
            return;
        }
        fputs(open, f);
        for (size_t i = 0; i < o->count; i++) {
            if (i)
                fputs(", ", f);
            repr(f, t, o->items[i], depth + 1);
        }
        if (*close)
            fputs(close, f);
        else
            fputs(o->count == 1 ? ",)" : ")", f);
        return;
    }
    case '{':
        fputc('{', f);
        for (size_t i = 0; i + 1 < o->count; i += 2) {
            if (i)
                fputs(", ", f);
            repr(f, t, o->items[i], depth + 1);
            fputs(": ", f);
            repr(f, t, o->items[i + 1], depth + 1);
        }
        fputc('}', f);
        return;
    case ':':
        fputs("slice(", f);
        for (size_t i = 0; i < o->count; i++) {
            if (i)
                fputs(", ", f);
            repr(f, t, o->items[i], depth + 1);
        }
        fputc(')', f);
        return;
    case 'c': {
        pyc_code c;
        fputs("<code ", f);
        if (pyc_marshal_code(t, o, &c) == 0 && c.name)
            escaped(f, c.name);
        fputc('>', f);
        return;
    }
    default:
        if (is_text(o->type)) {
            bool bytes = o->type == 's' && !py2(t);
            quoted(f, o->data, o->size, bytes);
        }
        return;
    }
}

static void text_names(FILE *f, const char *label, const pyc_marshal_tree *t,
                       const pyc_object *o, int indent)
{
    if (!o)
        return;
    fprintf(f, "%*s%-16s ", indent, "", label);
    repr(f, t, o, 0);
    fputc('\n', f);
}

static void text_bytes(FILE *f, const char *label, const pyc_object *o, int indent)
{
    if (!o)
        return;
    fprintf(f, "%*s%-16s ", indent, "", label);
    if (o->size == 0)
        fputs("(empty)", f);
    hex(f, o->data, o->size);
    fputc('\n', f);
}

static void text_code(FILE *f, const pyc_marshal_tree *t, const pyc_object *o, int indent,
                      int depth)
{
    pyc_code c;
    if (depth > 200 || !spend()) {
        fprintf(f, "%*s...\n", indent, "");
        return;
    }
    if (pyc_marshal_code(t, o, &c) != 0) {
        fprintf(f, "%*s(not a complete code object)\n", indent, "");
        return;
    }
    fprintf(f, "%*scode ", indent, "");
    if (c.name)
        escaped(f, c.name);
    fputc('\n', f);
    indent += 2;
    if (c.qualname) {
        fprintf(f, "%*s%-16s ", indent, "", "qualname");
        escaped(f, c.qualname);
        fputc('\n', f);
    }
    if (c.filename) {
        fprintf(f, "%*s%-16s ", indent, "", "filename");
        escaped(f, c.filename);
        fputc('\n', f);
    }
    fprintf(f, "%*s%-16s %d\n", indent, "", "firstlineno", c.firstlineno);
    fprintf(f, "%*s%-16s 0x%x\n", indent, "", "flags", (unsigned)c.flags);
    fprintf(f, "%*s%-16s %d", indent, "", "argcount", c.argcount);
    if (c.has_posonlyargcount)
        fprintf(f, ", posonly %d", c.posonlyargcount);
    fprintf(f, ", kwonly %d", c.kwonlyargcount);
    if (c.has_nlocals)
        fprintf(f, ", nlocals %d", c.nlocals);
    fprintf(f, ", stacksize %d\n", c.stacksize);
    text_names(f, "names", t, c.names, indent);
    text_names(f, "varnames", t, c.varnames, indent);
    text_names(f, "freevars", t, c.freevars, indent);
    text_names(f, "cellvars", t, c.cellvars, indent);
    text_names(f, "localsplusnames", t, c.localsplusnames, indent);
    text_bytes(f, "localspluskinds", c.localspluskinds, indent);
    if (c.consts) {
        const pyc_object *k = c.consts;
        if (k->count == 0)
            fprintf(f, "%*s%-16s ()", indent, "", "consts");
        else
            fprintf(f, "%*sconsts", indent, "");
        fputc('\n', f);
        for (size_t i = 0; i < k->count; i++) {
            fprintf(f, "%*s  [%zu] ", indent, "", i);
            repr(f, t, k->items[i], 0);
            fputc('\n', f);
        }
    }
    text_bytes(f, "code", c.code, indent);
    text_bytes(f, "linetable", c.linetable, indent);
    text_bytes(f, "exceptiontable", c.exceptiontable, indent);
    if (c.consts)
        for (size_t i = 0; i < c.consts->count; i++) {
            const pyc_object *k = pyc_marshal_resolve(t, c.consts->items[i]);
            if (k->type == 'c')
                text_code(f, t, k, indent, depth + 1);
        }
}

void codedump_text(FILE *f, const pyc_marshal_tree *tree, const pyc_object *o)
{
    budget = DUMP_BUDGET;
    o = pyc_marshal_resolve(tree, o);
    if (o->type == 'c') {
        text_code(f, tree, o, 0, 0);
        return;
    }
    repr(f, tree, o, 0);
    fputc('\n', f);
}

/* ---- JSON ----------------------------------------------------------------- */

static void json_value(FILE *f, const pyc_marshal_tree *t, const pyc_object *o, int depth);

static void json_str(FILE *f, const pyc_object *o)
{
    if (!o)
        fputs("null", f);
    else
        cli_json_write_string(f, (const char *)o->data, o->size);
}

static void json_hex(FILE *f, const pyc_object *o)
{
    if (!o) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    hex(f, o->data, o->size);
    fputc('"', f);
}

static void json_list(FILE *f, const pyc_marshal_tree *t, const pyc_object *o, int depth)
{
    if (!o) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (size_t i = 0; i < o->count; i++) {
        if (i)
            fputs(", ", f);
        json_value(f, t, o->items[i], depth + 1);
    }
    fputc(']', f);
}

static void json_tagged(FILE *f, const char *type, const char *key)
{
    fprintf(f, "{\"type\": \"%s\", \"%s\": ", type, key);
}

static void json_code(FILE *f, const pyc_marshal_tree *t, const pyc_object *o, int depth)
{
    pyc_code c;
    if (pyc_marshal_code(t, o, &c) != 0) {
        fputs("{\"type\": \"code\", \"incomplete\": true}", f);
        return;
    }
    fputs("{\"type\": \"code\", \"name\": ", f);
    json_str(f, c.name);
    fputs(", \"qualname\": ", f);
    json_str(f, c.qualname);
    fputs(", \"filename\": ", f);
    json_str(f, c.filename);
    fprintf(f, ", \"firstlineno\": %d, \"flags\": %d, \"argcount\": %d, ", c.firstlineno,
            c.flags, c.argcount);
    if (c.has_posonlyargcount)
        fprintf(f, "\"posonlyargcount\": %d, ", c.posonlyargcount);
    else
        fputs("\"posonlyargcount\": null, ", f);
    fprintf(f, "\"kwonlyargcount\": %d, ", c.kwonlyargcount);
    if (c.has_nlocals)
        fprintf(f, "\"nlocals\": %d, ", c.nlocals);
    else
        fputs("\"nlocals\": null, ", f);
    fprintf(f, "\"stacksize\": %d, \"names\": ", c.stacksize);
    json_list(f, t, c.names, depth);
    fputs(", \"varnames\": ", f);
    json_list(f, t, c.varnames, depth);
    fputs(", \"freevars\": ", f);
    json_list(f, t, c.freevars, depth);
    fputs(", \"cellvars\": ", f);
    json_list(f, t, c.cellvars, depth);
    fputs(", \"localsplusnames\": ", f);
    json_list(f, t, c.localsplusnames, depth);
    fputs(", \"localspluskinds\": ", f);
    json_hex(f, c.localspluskinds);
    fputs(", \"consts\": ", f);
    json_list(f, t, c.consts, depth);
    fputs(", \"code\": ", f);
    json_hex(f, c.code);
    fputs(", \"linetable\": ", f);
    json_hex(f, c.linetable);
    fputs(", \"exceptiontable\": ", f);
    json_hex(f, c.exceptiontable);
    fputc('}', f);
}

static void json_value(FILE *f, const pyc_marshal_tree *t, const pyc_object *o, int depth)
{
    o = pyc_marshal_resolve(t, o);
    if (depth > 200 || !spend()) {
        fputs("{\"type\": \"elided\"}", f);
        return;
    }
    switch (o->type) {
    case 'N': case '0': fputs("null", f); return;
    case 'T': fputs("true", f); return;
    case 'F': fputs("false", f); return;
    case '.': fputs("{\"type\": \"ellipsis\"}", f); return;
    case 'S': fputs("{\"type\": \"stopiteration\"}", f); return;
    case 'i': case 'I':
        if (o->value > -(INT64_C(1) << 53) && o->value < (INT64_C(1) << 53)) {
            fprintf(f, "%" PRId64, o->value);
            return;
        }
        json_tagged(f, "int", "value");
        fprintf(f, "\"%" PRId64 "\"}", o->value);
        return;
    case 'l':
        if (o->size / 2 <= 4) {
            /* At most 60 bits: a number when it fits JSON's exact range. */
            int64_t v = 0;
            for (size_t i = o->size / 2; i-- > 0;)
                v = v << 15 | (int64_t)(o->data[2 * i] | o->data[2 * i + 1] << 8);
            if (v < (INT64_C(1) << 53)) {
                fprintf(f, "%" PRId64, o->value < 0 ? -v : v);
                return;
            }
        }
        json_tagged(f, "int", "value");
        fputc('"', f);
        long_decimal(o, f);
        fputs("\"}", f);
        return;
    case 'g': case 'f': case 'y': case 'x':
        json_tagged(f, o->type == 'g' || o->type == 'f' ? "float" : "complex", "repr");
        fputc('"', f);
        repr(f, t, o, depth);
        fputs("\"}", f);
        return;
    case '(': case ')': case '[': case '<': case '>': case ':':
        json_tagged(f, o->type == '[' ? "list" : o->type == '<' ? "set" :
                       o->type == '>' ? "frozenset" : o->type == ':' ? "slice" : "tuple",
                    "items");
        json_list(f, t, o, depth);
        fputc('}', f);
        return;
    case '{':
        json_tagged(f, "dict", "items");
        json_list(f, t, o, depth);
        fputc('}', f);
        return;
    case 'c':
        json_code(f, t, o, depth + 1);
        return;
    case 's':
        /* 3.x bytes; 2.7 str. */
        if (py2(t)) {
            json_str(f, o);
            return;
        }
        json_tagged(f, "bytes", "hex");
        json_hex(f, o);
        fputc('}', f);
        return;
    default:
        json_str(f, o);
        return;
    }
}

void codedump_json(FILE *f, const pyc_marshal_tree *tree, const pyc_object *o)
{
    budget = DUMP_BUDGET;
    json_value(f, tree, o, 0);
}
