/*
 * version.c — the version of the library actually linked.
 */
#include "pycache.h"

const char *pyc_version_string(void)
{
    return PYC_VERSION_STRING;
}
