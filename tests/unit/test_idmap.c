/* Tests of the id map (src/core/idmap.c) against a plain array as the
 * model: random puts, gets and deletes, with ids chosen to collide, so the
 * backward shift of deletion is exercised across the table's wrap. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "core/idmap.h"

Test(idmap, put_get_del)
{
    tt_idmap m;
    cr_assert_eq(tt_idmap_init(&m, 20), 0);
    int a, b;
    cr_assert_null(tt_idmap_get(&m, 7));
    cr_assert_eq(tt_idmap_put(&m, 7, &a), 0);
    cr_assert_eq(tt_idmap_put(&m, 0, &b), 0);
    cr_assert_eq(tt_idmap_get(&m, 7), &a);
    cr_assert_eq(tt_idmap_get(&m, 0), &b);
    cr_assert_eq(tt_idmap_del(&m, 7), &a);
    cr_assert_null(tt_idmap_del(&m, 7));
    cr_assert_null(tt_idmap_get(&m, 7));
    cr_assert_eq(tt_idmap_get(&m, 0), &b);
    cr_assert_eq(m.n, 1);
    tt_idmap_free(&m);
}

Test(idmap, full_map_refuses)
{
    tt_idmap m;
    cr_assert_eq(tt_idmap_init(&m, 16), 0);
    int v;
    unsigned added = 0;
    for (uint32_t id = 1; id <= 40; id++)
        if (tt_idmap_put(&m, id, &v) == 0)
            added++;
    cr_assert_eq(added, 15, "one slot stays free");
    cr_assert_eq(tt_idmap_put(&m, 99, &v), -ENOSPC);
    for (uint32_t id = 1; id <= 15; id++)
        cr_assert_eq(tt_idmap_get(&m, id), &v);
    cr_assert_null(tt_idmap_get(&m, 99), "a lookup in a full map ends");
    tt_idmap_free(&m);
}

/* Against a model, with ids that hash into the last few homes of a
 * 64-slot map: long probe runs that wrap around the end. */
Test(idmap, random_against_a_model)
{
    enum { IDS = 48, ROUNDS = 200000 };
    tt_idmap m;
    cr_assert_eq(tt_idmap_init(&m, 64), 0);
    void *model[IDS] = {0};
    static int vals[IDS];
    uint32_t ids[IDS];
    srand(14);
    /* Ids whose home (the map's hash, known here) is one of the last four
     * slots: every run of entries wraps past the end. */
    for (uint32_t c = 1, i = 0; i < IDS; c++)
        if ((uint32_t)(c * 2654435769u) >> 26 >= 60)
            ids[i++] = c;
    size_t n = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        unsigned k = (unsigned)rand() % IDS;
        switch (rand() % 3) {
        case 0:
            if (model[k] == NULL) {
                cr_assert_eq(tt_idmap_put(&m, ids[k], &vals[k]), 0);
                model[k] = &vals[k];
                n++;
            }
            break;
        case 1:
            cr_assert_eq(tt_idmap_del(&m, ids[k]), model[k]);
            if (model[k] != NULL)
                n--;
            model[k] = NULL;
            break;
        default:
            cr_assert_eq(tt_idmap_get(&m, ids[k]), model[k], "round %u id %u", r, k);
        }
        cr_assert_eq(m.n, n);
    }
    for (unsigned k = 0; k < IDS; k++)
        cr_assert_eq(tt_idmap_get(&m, ids[k]), model[k]);
    tt_idmap_free(&m);
}
