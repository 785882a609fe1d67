/* A prototype, not part of gradviz: how fast a compiled capture kernel would be (issue 12).
   Built and measured by measure.py beside it; gradviz itself is pure Python.
   walk(root, value_type) -> (order, arity int64 bytes, operand_pos int32 bytes, data f64 bytes, grad f64 bytes) */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

typedef struct { PyObject *key; int64_t val; } slot;
typedef struct { slot *s; size_t cap, n; } table;
static inline size_t hp(PyObject *p, size_t mask) { uintptr_t x = (uintptr_t)p >> 4; x ^= x >> 17; x *= 0x9E3779B97F4A7C15ULL; return (size_t)(x >> 20) & mask; }
static int grow(table *t) {
    size_t nc = t->cap ? t->cap * 2 : 1024; slot *ns = calloc(nc, sizeof(slot)); if (!ns) return -1;
    for (size_t i = 0; i < t->cap; i++) if (t->s[i].key) { size_t j = hp(t->s[i].key, nc - 1); while (ns[j].key) j = (j + 1) & (nc - 1); ns[j] = t->s[i]; }
    free(t->s); t->s = ns; t->cap = nc; return 0;
}
static slot *find(table *t, PyObject *k, int insert) {
    if (insert && (t->n + 1) * 2 > t->cap && grow(t) < 0) return NULL;
    size_t m = t->cap - 1, j = hp(k, m);
    while (t->s[j].key) { if (t->s[j].key == k) return &t->s[j]; j = (j + 1) & m; }
    if (!insert) return NULL;
    t->s[j].key = k; t->n++; return &t->s[j];
}
static Py_ssize_t off(PyObject *type, const char *name) {
    PyObject *d = PyObject_GetAttrString(type, name); if (!d) return -1;
    Py_ssize_t o = ((PyMemberDescrObject *)d)->d_member->offset; Py_DECREF(d); return o;
}
static PyObject *walk(PyObject *self, PyObject *args) {
    PyObject *root, *type; if (!PyArg_ParseTuple(args, "OO", &root, &type)) return NULL;
    Py_ssize_t op = off(type, "_prev"), od = off(type, "data"), og = off(type, "grad"); if (op < 0 || od < 0 || og < 0) return NULL;
    table t = {0}; PyObject *order = PyList_New(0);
    size_t cap = 1024, depth = 0; PyObject **sn = malloc(cap * sizeof(PyObject *)); Py_ssize_t *si = malloc(cap * sizeof(Py_ssize_t));
    #define PREV(o) (*(PyObject **)((char *)(o) + op))
    find(&t, root, 1)->val = -1; sn[0] = root; si[0] = 0; depth = 1;
    int64_t k = 0;
    while (depth) {
        PyObject *node = sn[depth - 1]; PyObject *prev = PREV(node);
        if (!PyTuple_Check(prev)) { PyErr_SetString(PyExc_TypeError, "_prev is not a tuple"); goto fail; }
        Py_ssize_t i = si[depth - 1], n = PyTuple_GET_SIZE(prev); int descended = 0;
        for (; i < n; i++) {
            PyObject *c = PyTuple_GET_ITEM(prev, i);
            if (Py_TYPE(c) != (PyTypeObject *)type) { PyErr_SetString(PyExc_TypeError, "not a Value"); goto fail; }
            slot *s = find(&t, c, 0);
            if (s) { if (s->val < 0) { PyErr_SetString(PyExc_ValueError, "cycle"); goto fail; } continue; }
            PyObject *cp = PREV(c);
            if (PyTuple_GET_SIZE(cp)) {
                find(&t, c, 1)->val = -1; si[depth - 1] = i + 1;
                if (depth == cap) { cap *= 2; sn = realloc(sn, cap * sizeof(PyObject *)); si = realloc(si, cap * sizeof(Py_ssize_t)); }
                sn[depth] = c; si[depth] = 0; depth++; descended = 1; break;
            }
            find(&t, c, 1)->val = k++; PyList_Append(order, c);
        }
        if (!descended) { find(&t, node, 0)->val = k++; PyList_Append(order, node); depth--; }
    }
    Py_ssize_t N = PyList_GET_SIZE(order), M = 0;
    PyObject *ar = PyBytes_FromStringAndSize(NULL, N * 8), *dd = PyBytes_FromStringAndSize(NULL, N * 8), *gg = PyBytes_FromStringAndSize(NULL, N * 8);
    int64_t *a = (int64_t *)PyBytes_AS_STRING(ar); double *d = (double *)PyBytes_AS_STRING(dd), *g = (double *)PyBytes_AS_STRING(gg);
    for (Py_ssize_t j = 0; j < N; j++) { PyObject *o = PyList_GET_ITEM(order, j); a[j] = PyTuple_GET_SIZE(PREV(o)); M += a[j];
        d[j] = PyFloat_AsDouble(*(PyObject **)((char *)o + od)); g[j] = PyFloat_AsDouble(*(PyObject **)((char *)o + og)); }
    PyObject *ops = PyBytes_FromStringAndSize(NULL, M * 4); int32_t *p = (int32_t *)PyBytes_AS_STRING(ops); Py_ssize_t q = 0;
    for (Py_ssize_t j = 0; j < N; j++) { PyObject *pr = PREV(PyList_GET_ITEM(order, j));
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(pr); i++) p[q++] = (int32_t)find(&t, PyTuple_GET_ITEM(pr, i), 0)->val; }
    free(t.s); free(sn); free(si);
    return Py_BuildValue("(NNNNN)", order, ar, ops, dd, gg);
fail:
    free(t.s); free(sn); free(si); Py_DECREF(order); return NULL;
}
static PyMethodDef M[] = {{"walk", walk, METH_VARARGS, ""}, {0}};
static struct PyModuleDef D = {PyModuleDef_HEAD_INIT, "ck", 0, -1, M};
PyMODINIT_FUNC PyInit_ck(void) { return PyModule_Create(&D); }
