/* A tiny C key-value store, the kind of library a -sys crate wraps.
 *
 * It has a real bug: kv_put() on an existing key replaces the value without
 * freeing the old one. leakcheck's demo catches it. */
#include <stdlib.h>
#include <string.h>

struct kv_entry {
    char *key;
    char *value;
    struct kv_entry *next;
};

struct kv_store {
    struct kv_entry *head;
};

struct kv_store *kv_new(void) {
    return calloc(1, sizeof(struct kv_store));
}

static struct kv_entry *kv_find(struct kv_store *kv, const char *key) {
    for (struct kv_entry *e = kv->head; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

int kv_put(struct kv_store *kv, const char *key, const char *value) {
    struct kv_entry *e = kv_find(kv, key);
    if (e) {
        e->value = strdup(value); /* BUG: the old value is never freed */
        return e->value ? 0 : -1;
    }
    e = malloc(sizeof *e);
    if (!e)
        return -1;
    e->key = strdup(key);
    e->value = strdup(value);
    e->next = kv->head;
    kv->head = e;
    return 0;
}

int kv_put_fixed(struct kv_store *kv, const char *key, const char *value) {
    struct kv_entry *e = kv_find(kv, key);
    if (e) {
        char *copy = strdup(value);
        if (!copy)
            return -1;
        free(e->value);
        e->value = copy;
        return 0;
    }
    return kv_put(kv, key, value);
}

const char *kv_get(struct kv_store *kv, const char *key) {
    struct kv_entry *e = kv_find(kv, key);
    return e ? e->value : NULL;
}

void kv_free(struct kv_store *kv) {
    struct kv_entry *e = kv->head;
    while (e) {
        struct kv_entry *next = e->next;
        free(e->key);
        free(e->value);
        free(e);
        e = next;
    }
    free(kv);
}
