# The dependency graph of a validated ALT file, in compact arrays (CSR) for large files.

from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memset


cdef class DependencyGraph:
    """Tasks as nodes 0..n-1 in file order; node i depends on deps(i), and is needed by needed_by(i).

    Built once per ALT file (the parser builds it while checking dependencies and keeps it
    on the AltFile); every algorithm here is linear in tasks + dependencies.
    """

    cdef readonly Py_ssize_t size
    cdef readonly list ids
    cdef int *dep_start      # dependencies of i: dep_list[dep_start[i] : dep_start[i + 1]]
    cdef int *dep_list
    cdef int *needed_start   # dependents of i: needed_list[needed_start[i] : needed_start[i + 1]]
    cdef int *needed_list

    def __cinit__(self):
        # Every graph, even one made by DependencyGraph() or __new__ from Python, is a valid
        # empty graph: the arrays are never NULL, so no method can read through NULL.
        self.size = 0
        self.ids = []
        self.dep_start = <int *>PyMem_Malloc(sizeof(int))
        self.dep_list = <int *>PyMem_Malloc(sizeof(int))
        self.needed_start = <int *>PyMem_Malloc(2 * sizeof(int))
        self.needed_list = <int *>PyMem_Malloc(sizeof(int))
        if not (self.dep_start and self.dep_list and self.needed_start and self.needed_list):
            raise MemoryError()
        self.dep_start[0] = 0
        self.needed_start[0] = self.needed_start[1] = 0

    def __dealloc__(self):
        PyMem_Free(self.dep_start)
        PyMem_Free(self.dep_list)
        PyMem_Free(self.needed_start)
        PyMem_Free(self.needed_list)

    @staticmethod
    cdef DependencyGraph allocate(Py_ssize_t n, Py_ssize_t edges):
        """An empty graph with room for n nodes and `edges` dependencies."""
        cdef DependencyGraph graph = DependencyGraph.__new__(DependencyGraph)
        if n + 2 > 0x7fffffff or edges + 1 > 0x7fffffff:
            raise MemoryError("dependency graph too large for 32-bit indices")
        PyMem_Free(graph.dep_start)
        PyMem_Free(graph.dep_list)
        PyMem_Free(graph.needed_start)
        PyMem_Free(graph.needed_list)
        graph.dep_start = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        graph.dep_list = <int *>PyMem_Malloc((edges + 1) * sizeof(int))
        graph.needed_start = <int *>PyMem_Malloc((n + 2) * sizeof(int))
        graph.needed_list = <int *>PyMem_Malloc((edges + 1) * sizeof(int))
        if not (graph.dep_start and graph.dep_list and graph.needed_start and graph.needed_list):
            raise MemoryError()  # __dealloc__ frees whatever was allocated
        graph.size = n
        return graph

    cdef void index_dependents(self):
        """Fills needed_*: the reversed edges, by a counting sort (prefix sums, then placement)."""
        cdef Py_ssize_t n = self.size, i, k
        cdef int d
        memset(self.needed_start, 0, (n + 2) * sizeof(int))
        for k in range(self.dep_start[n]):
            self.needed_start[self.dep_list[k] + 2] += 1
        for i in range(2, n + 2):
            self.needed_start[i] += self.needed_start[i - 1]
        for i in range(n):
            for k in range(self.dep_start[i], self.dep_start[i + 1]):
                d = self.dep_list[k]
                self.needed_list[self.needed_start[d + 1]] = <int>i
                self.needed_start[d + 1] += 1

    @staticmethod
    def of(AltFile alt):
        """The graph of an ALT file whose dependencies all name tasks of the file.

        A parsed AltFile already holds its graph (graphs are read-only, so it is shared).
        """
        if alt.graph is not None:
            return alt.graph
        cdef Py_ssize_t n = len(alt.tasks), edges = 0, i, k
        cdef Task task
        cdef dict index_of = {}
        cdef list tasks = alt.tasks     # read through task_at: code outside the core may have changed it
        for i in range(n):
            task = task_at(tasks, i)
            if not 0 <= task.index < n:     # the graph's arrays are written at it
                raise ValueError(f"task '{task.id}' says it is task {task.index} of {n}")
            edges += len(task.dependencies)
            index_of[task.id] = task.index
        cdef DependencyGraph graph = DependencyGraph.allocate(n, edges)
        graph.ids = [task_at(tasks, i).id for i in range(n)]
        k = 0
        for i in range(n):
            task = task_at(tasks, i)
            graph.dep_start[i] = <int>k
            for dep_id in task.dependencies:
                graph.dep_list[k] = <int>index_of[dep_id]
                k += 1
        graph.dep_start[n] = <int>k
        graph.index_dependents()
        return graph

    cdef void check_node(self, Py_ssize_t i) except *:
        if not 0 <= i < self.size:
            raise IndexError(f"task index {i} out of range for a graph of {self.size} tasks")

    cpdef list dependencies_of(self, Py_ssize_t i):
        self.check_node(i)
        return [self.dep_list[k] for k in range(self.dep_start[i], self.dep_start[i + 1])]

    cpdef list dependents_of(self, Py_ssize_t i):
        self.check_node(i)
        return [self.needed_list[k] for k in range(self.needed_start[i], self.needed_start[i + 1])]

    def edges(self):
        """(dependency id, dependent id) pairs in file order of the dependents."""
        cdef Py_ssize_t i, k
        return [(self.ids[self.dep_list[k]], self.ids[i])
                for i in range(self.size) for k in range(self.dep_start[i], self.dep_start[i + 1])]

    cpdef list roots(self):
        """Tasks that wait for nothing: they can start at once. File order."""
        cdef Py_ssize_t i
        return [i for i in range(self.size) if self.dep_start[i] == self.dep_start[i + 1]]

    cpdef list leaves(self):
        """Tasks nothing waits for: the run's final products. File order."""
        cdef Py_ssize_t i
        return [i for i in range(self.size) if self.needed_start[i] == self.needed_start[i + 1]]

    cpdef list find_cycle(self):
        """A dependency cycle as ids [a, b, ..., a] (a waits for b ...), or None. Iterative DFS."""
        cdef Py_ssize_t n = self.size, root, sp, k, j
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

    cdef int compute_levels(self, int *level, int *order) except -1:
        """Kahn's algorithm: level[i] (0 without dependencies, else 1 + the deepest
        dependency's) and `order`, dependencies first. Returns the number of levels."""
        cdef Py_ssize_t n = self.size, head = 0, tail = 0, i, k
        cdef int v, w, deepest = -1
        cdef int *waiting = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        if waiting == NULL:
            raise MemoryError()
        try:
            for i in range(n):
                waiting[i] = self.dep_start[i + 1] - self.dep_start[i]
                level[i] = 0
                if waiting[i] == 0:
                    order[tail] = <int>i
                    tail += 1
            while head < tail:
                v = order[head]
                head += 1
                if level[v] > deepest:
                    deepest = level[v]
                for k in range(self.needed_start[v], self.needed_start[v + 1]):
                    w = self.needed_list[k]
                    if level[v] + 1 > level[w]:
                        level[w] = level[v] + 1
                    waiting[w] -= 1
                    if waiting[w] == 0:
                        order[tail] = w
                        tail += 1
        finally:
            PyMem_Free(waiting)
        if tail != n:
            raise AltValidationError([ValidationIssue("/tasks", "dependency cycle")])
        return deepest + 1

    cpdef list levels(self):
        """level[i]: 0 for tasks with no dependencies, else 1 + the deepest dependency's level.
        Tasks of one level can run in parallel."""
        cdef Py_ssize_t n = self.size, i
        cdef int *level = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        cdef int *order = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        if not (level and order):
            PyMem_Free(level); PyMem_Free(order)
            raise MemoryError()
        try:
            self.compute_levels(level, order)
            return [level[i] for i in range(n)]
        finally:
            PyMem_Free(level)
            PyMem_Free(order)

    cpdef list topological_order(self):
        """Node indices, dependencies first: level by level, file order within a level.

        Linear: a counting sort of the nodes by level."""
        cdef Py_ssize_t n = self.size, i
        cdef int count, v
        cdef int *level = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        cdef int *order = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        cdef int *start = NULL
        if not (level and order):
            PyMem_Free(level); PyMem_Free(order)
            raise MemoryError()
        try:
            count = self.compute_levels(level, order)
            start = <int *>PyMem_Malloc((count + 1) * sizeof(int))
            if start == NULL:
                raise MemoryError()
            memset(start, 0, (count + 1) * sizeof(int))
            for i in range(n):
                start[level[i] + 1] += 1
            for v in range(1, count + 1):
                start[v] += start[v - 1]
            for i in range(n):
                order[start[level[i]]] = <int>i
                start[level[i]] += 1
            return [order[i] for i in range(n)]
        finally:
            PyMem_Free(level)
            PyMem_Free(order)
            PyMem_Free(start)

    cpdef list level_groups(self):
        """The tasks of each level, file order within a level: [[roots...], [...], ...]."""
        cdef list groups = []
        cdef list levels = self.levels()
        cdef Py_ssize_t i
        for i in range(self.size):
            while len(groups) <= <int>levels[i]:
                groups.append([])
            (<list>groups[<int>levels[i]]).append(i)
        return groups

    cpdef tuple critical_path(self, weights=None):
        """The heaviest dependency chain: (node indices, dependencies first; total weight).

        Without weights every task weighs 1 (the longest chain by count). Among equally
        heavy chains, the one ending first in file order, then through the first-listed
        heaviest dependency.
        """
        cdef Py_ssize_t n = self.size, i, k, position
        cdef int v, d, best_dep, end
        cdef double best
        cdef double *weight = <double *>PyMem_Malloc((n + 1) * sizeof(double))
        cdef double *finish = <double *>PyMem_Malloc((n + 1) * sizeof(double))
        cdef int *previous = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        cdef int *level = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        cdef int *order = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        if not (weight and finish and previous and level and order):
            PyMem_Free(weight); PyMem_Free(finish); PyMem_Free(previous)
            PyMem_Free(level); PyMem_Free(order)
            raise MemoryError()
        try:
            if weights is None:
                for i in range(n):
                    weight[i] = 1.0
            else:
                if len(weights) != n:
                    raise ValueError(f"critical_path needs {n} weights, got {len(weights)}")
                for i in range(n):
                    weight[i] = <double>weights[i]
            if n == 0:
                return [], 0.0
            self.compute_levels(level, order)
            for position in range(n):
                v = order[position]
                best = 0.0
                best_dep = -1
                for k in range(self.dep_start[v], self.dep_start[v + 1]):
                    d = self.dep_list[k]
                    if best_dep < 0 or finish[d] > best:
                        best = finish[d]
                        best_dep = d
                previous[v] = best_dep
                finish[v] = best + weight[v]
            end = 0
            for i in range(1, n):
                if finish[i] > finish[end]:
                    end = <int>i
            path = []
            v = end
            while v >= 0:
                path.append(v)
                v = previous[v]
            path.reverse()
            return path, finish[end]
        finally:
            PyMem_Free(weight)
            PyMem_Free(finish)
            PyMem_Free(previous)
            PyMem_Free(level)
            PyMem_Free(order)
