/* SPDX-License-Identifier: MIT */
/* fifo.h: a singly linked FIFO threaded through its items' own `next` pointer (intrusive). */
#ifndef LC_FIFO_H
#define LC_FIFO_H

/*
 * `head` and `tail` are the queue: two pointers of the items' type, both NULL
 * when it is empty; `next` names the member that links an item to the one
 * after it. The queue allocates nothing: it is its items, each in at most one
 * queue through a given member at a time. Macros, because the queues link
 * different types (batches, worker jobs, requests, DLQ appends) through
 * members of different names; arguments are evaluated more than once, so pass
 * plain lvalues.
 */

/* Appends item at the tail. */
#define LC_FIFO_PUSH(head, tail, item, next)                                                       \
    do {                                                                                           \
        (item)->next = NULL;                                                                       \
        if (tail)                                                                                  \
            (tail)->next = (item);                                                                 \
        else                                                                                       \
            (head) = (item);                                                                       \
        (tail) = (item);                                                                           \
    } while (0)

/* Takes the head off into out (the queue must not be empty); out->next is NULL after. */
#define LC_FIFO_POP(head, tail, out, next)                                                         \
    do {                                                                                           \
        (out) = (head);                                                                            \
        (head) = (out)->next;                                                                      \
        if (!(head))                                                                               \
            (tail) = NULL;                                                                         \
        (out)->next = NULL;                                                                        \
    } while (0)

#endif
