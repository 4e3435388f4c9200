/*
 * codedump.h — a code-object tree as text or JSON, the same for every
 * Python version (`pycache inspect --code`). Reads only libpycache's
 * marshal object model: no interpreter needed.
 */
#ifndef PYCACHE_CODEDUMP_H
#define PYCACHE_CODEDUMP_H

#include <stdio.h>

#include "pycache.h"

/* Writes O (a code object, or any object) of TREE to F: an indented listing
 * of each code object's fields, constants by their Python repr, nested code
 * objects after their parent. */
void codedump_text(FILE *f, const pyc_marshal_tree *tree, const pyc_object *o);

/* Writes O of TREE to F as one JSON value (no newline): a code object is
 * {"type": "code", "name", "qualname", "filename", "firstlineno", "flags",
 * "argcount", "posonlyargcount", "kwonlyargcount", "nlocals", "stacksize",
 * "names", "varnames", "freevars", "cellvars", "localsplusnames",
 * "localspluskinds", "consts", "code", "linetable", "exceptiontable"}
 * (null where the version has no such field; byte strings as hex); str is
 * a JSON string, None/True/False null/true/false, an int that fits 53 bits
 * a number, anything else {"type": ..., ...}. Past 2,000,000 objects (a
 * hostile body whose back-references unfold exponentially) or 200 levels,
 * an object is {"type": "elided"} (text: "..."). */
void codedump_json(FILE *f, const pyc_marshal_tree *tree, const pyc_object *o);

#endif /* PYCACHE_CODEDUMP_H */
