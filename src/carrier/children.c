#include "carrier/children.h"

#include <stddef.h>

void tt_child_add(tt_children *set, tt_child *ch, void (*close)(void *ud), void *ud)
{
    ch->set = set;
    ch->close = close;
    ch->ud = ud;
    ch->prev = NULL;
    ch->next = set->head;
    if (set->head)
        set->head->prev = ch;
    set->head = ch;
}

void tt_child_remove(tt_child *ch)
{
    if (ch->set == NULL)
        return;
    if (ch->prev)
        ch->prev->next = ch->next;
    else
        ch->set->head = ch->next;
    if (ch->next)
        ch->next->prev = ch->prev;
    ch->prev = ch->next = NULL;
    ch->set = NULL;
}

void tt_children_close(tt_children *set)
{
    while (set->head) {
        tt_child *ch = set->head;
        tt_child_remove(ch);
        ch->close(ch->ud);
    }
}
