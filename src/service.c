/*
 * service.c - helpers for struct ppdb_service (src/ppdb_env.h): TXT entries
 * as "key=value" strings, and the names of discovery states.
 *
 * Pure functions over caller memory, shared by both env implementations
 * and by the code that builds or reads announcements. Invariant: every
 * txt[i] below txt_count is NUL-terminated within PPDB_SVC_TXT_LEN.
 */
#include "ppdb_env.h"

int ppdb_service_txt_add(struct ppdb_service *svc, const char *key, const char *value)
{
    PPDB_ASSERT(svc != NULL && key != NULL && value != NULL);
    PPDB_ASSERT(key[0] != '\0' && strchr(key, '=') == NULL);
    if (svc->txt_count >= PPDB_SVC_TXT_MAX)
        return PPDB_ELIMIT;
    size_t klen = strlen(key), vlen = strlen(value);
    if (klen + 1 + vlen >= PPDB_SVC_TXT_LEN)
        return PPDB_ERANGE;
    char *out = svc->txt[svc->txt_count++];
    memcpy(out, key, klen);
    out[klen] = '=';
    memcpy(out + klen + 1, value, vlen + 1);
    return 0;
}

const char *ppdb_service_txt_get(const struct ppdb_service *svc, const char *key)
{
    PPDB_ASSERT(svc != NULL && key != NULL);
    size_t klen = strlen(key);
    uint32_t n = PPDB_MIN(svc->txt_count, (uint32_t)PPDB_SVC_TXT_MAX);
    for (uint32_t i = 0; i < n; i++) {
        const char *t = svc->txt[i];
        if (strncmp(t, key, klen) == 0 && t[klen] == '=')
            return t + klen + 1;
    }
    return NULL;
}

bool ppdb_service_txt_has(const struct ppdb_service *svc, const char *entry)
{
    PPDB_ASSERT(svc != NULL && entry != NULL);
    uint32_t n = PPDB_MIN(svc->txt_count, (uint32_t)PPDB_SVC_TXT_MAX);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(svc->txt[i], entry) == 0)
            return true;
    return false;
}

const char *ppdb_discovery_state_name(int state)
{
    switch (state) {
    case PPDB_DISCOVERY_OFF:
        return "off";
    case PPDB_DISCOVERY_UNAVAILABLE:
        return "unavailable";
    case PPDB_DISCOVERY_WAITING:
        return "waiting";
    case PPDB_DISCOVERY_RUNNING:
        return "running";
    default:
        return "?";
    }
}
