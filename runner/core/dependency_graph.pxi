# The dependency graph of a validated ALT file, in compact arrays (CSR) for large files.

from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memset
import heapq


cdef class DependencyGraph:
    """Tasks as nodes 0..n-1 in file order; node i depends on deps(i), and is needed by needed_by(i).

    Built once per ALT file; every algorithm here is linear (or n log n for stable order).
    """

    cdef readonly Py_ssize_t size
    cdef readonly list ids
    cdef int *dep_start      # dependencies of i: dep_list[dep_start[i] : dep_start[i + 1]]
    cdef int *dep_list
    cdef int *needed_start   # dependents of i: needed_list[needed_start[i] : needed_start[i + 1]]
    cdef int *needed_list

    def __dealloc__(self):
        PyMem_Free(self.dep_start)
        PyMem_Free(self.dep_list)
        PyMem_Free(self.needed_start)
        PyMem_Free(self.needed_list)

    @staticmethod
    def of(AltFile alt):
        """The graph of an ALT file whose dependencies all name tasks of the file."""
        cdef DependencyGraph graph = DependencyGraph.__new__(DependencyGraph)
        cdef Py_ssize_t n = len(alt.tasks), edges = 0, i, k
        cdef int d
        cdef Task task
        cdef dict index_of = {}
        for task in alt.tasks:
            edges += len(task.dependencies)
            index_of[task.id] = task.index
        graph.size = n
        graph.ids = [task.id for task in alt.tasks]
        graph.dep_start = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        graph.dep_list = <int *>PyMem_Malloc((edges + 1) * sizeof(int))
        graph.needed_start = <int *>PyMem_Malloc((n + 2) * sizeof(int))
        graph.needed_list = <int *>PyMem_Malloc((edges + 1) * sizeof(int))
        if not (graph.dep_start and graph.dep_list and graph.needed_start and graph.needed_list):
            raise MemoryError()
        memset(graph.needed_start, 0, (n + 2) * sizeof(int))
        k = 0
        for i in range(n):
            task = <Task>alt.tasks[i]
            graph.dep_start[i] = k
            for dep_id in task.dependencies:
                graph.dep_list[k] = <int>index_of[dep_id]
                graph.needed_start[graph.dep_list[k] + 2] += 1
                k += 1
        graph.dep_start[n] = k
        # Counting sort of the reversed edges: prefix sums, then placement.
        for i in range(2, n + 2):
            graph.needed_start[i] += graph.needed_start[i - 1]
        for i in range(n):
            for k in range(graph.dep_start[i], graph.dep_start[i + 1]):
                d = graph.dep_list[k]
                graph.needed_list[graph.needed_start[d + 1]] = <int>i
                graph.needed_start[d + 1] += 1
        return graph

    cpdef list dependencies_of(self, Py_ssize_t i):
        return [self.dep_list[k] for k in range(self.dep_start[i], self.dep_start[i + 1])]

    cpdef list dependents_of(self, Py_ssize_t i):
        return [self.needed_list[k] for k in range(self.needed_start[i], self.needed_start[i + 1])]

    def edges(self):
        """(dependency id, dependent id) pairs in file order of the dependents."""
        cdef Py_ssize_t i, k
        return [(self.ids[self.dep_list[k]], self.ids[i])
                for i in range(self.size) for k in range(self.dep_start[i], self.dep_start[i + 1])]

    cpdef list find_cycle(self):
        """A dependency cycle as ids [a, b, ..., a] (a waits for b ...), or None. Iterative DFS."""
        cdef Py_ssize_t n = self.size, root, sp, k
        cdef int v, w
        cdef char *colour = <char *>PyMem_Malloc(n + 1)        # 0 new, 1 on the path, 2 done
        cdef int *next_edge = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        cdef int *path = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        if not (colour and next_edge and path):
            PyMem_Free(colour); PyMem_Free(next_edge); PyMem_Free(path)
            raise MemoryError()
        memset(colour, 0, n + 1)
        cycle = None
        try:
            for root in range(n):
                if colour[root]:
                    continue
                sp = 0
                path[0] = <int>root
                colour[root] = 1
                next_edge[root] = self.dep_start[root]
                while sp >= 0:
                    v = path[sp]
                    if next_edge[v] < self.dep_start[v + 1]:
                        w = self.dep_list[next_edge[v]]
                        next_edge[v] += 1
                        if colour[w] == 0:
                            colour[w] = 1
                            next_edge[w] = self.dep_start[w]
                            sp += 1
                            path[sp] = w
                        elif colour[w] == 1:
                            k = sp
                            while path[k] != w:
                                k -= 1
                            cycle = [self.ids[path[j]] for j in range(k, sp + 1)]
                            cycle.append(self.ids[w])
                            return cycle
                    else:
                        colour[v] = 2
                        sp -= 1
            return None
        finally:
            PyMem_Free(colour)
            PyMem_Free(next_edge)
            PyMem_Free(path)

    cpdef list topological_order(self):
        """Node indices, dependencies first; among tasks ready together, file order."""
        cdef Py_ssize_t n = self.size, i, k
        cdef int v, w
        cdef list waiting = [self.dep_start[i + 1] - self.dep_start[i] for i in range(n)]
        cdef list ready = [i for i in range(n) if waiting[i] == 0]
        cdef list order = []
        heapq.heapify(ready)
        while ready:
            v = heapq.heappop(ready)
            order.append(v)
            for k in range(self.needed_start[v], self.needed_start[v + 1]):
                w = self.needed_list[k]
                waiting[w] -= 1
                if waiting[w] == 0:
                    heapq.heappush(ready, w)
        if len(order) != n:
            raise AltValidationError([ValidationIssue("/tasks", "dependency cycle")])
        return order

    cpdef list levels(self):
        """level[i]: 0 for tasks with no dependencies, else 1 + the deepest dependency's level.
        Tasks of one level can run in parallel."""
        cdef Py_ssize_t k
        cdef int v, level
        cdef list result = [0] * self.size
        for v in self.topological_order():
            level = 0
            for k in range(self.dep_start[v], self.dep_start[v + 1]):
                if <int>result[self.dep_list[k]] + 1 > level:
                    level = <int>result[self.dep_list[k]] + 1
            result[v] = level
        return result
