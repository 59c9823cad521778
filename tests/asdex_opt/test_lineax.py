import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from jax.experimental import sparse as jsparse

from asdex_opt.lineax import (
    BlockDiagonalLU,
    Preconditioned,
    SparseLU,
    SparseMatrixLinearOperator,
    fold_sparse,
    jacobi_preconditioner,
)

ATOL = 1e-4


def random_sparse(m, n, *, seed=0, density=0.3, dominant=False, symmetric=False, pad=0):
    """A random sparse BCOO matrix with duplicate entries and `pad` padding entries."""
    rng = np.random.default_rng(seed)
    nnz = max(1, int(density * m * n))
    rows = rng.integers(0, m, nnz)
    cols = rng.integers(0, n, nnz)
    data = rng.normal(size=nnz)
    # Duplicates: repeat the first few entries (BCOO sums them).
    rows, cols, data = np.r_[rows, rows[:3]], np.r_[cols, cols[:3]], np.r_[data, data[:3]]
    if symmetric:
        rows, cols, data = np.r_[rows, cols], np.r_[cols, rows], np.r_[data, data]
    if dominant:
        k = np.arange(min(m, n))
        rows, cols = np.r_[rows, k], np.r_[cols, k]
        data = np.r_[data, np.full(k.size, 2.0 * nnz / min(m, n) + 2.0)]
    # Padding: out-of-range indices, which BCOO ignores.
    rows, cols, data = (
        np.r_[rows, np.full(pad, m)],
        np.r_[cols, np.full(pad, n)],
        np.r_[data, np.ones(pad)],
    )
    indices = jnp.asarray(np.stack([rows, cols], axis=1), dtype=jnp.int32)
    return jsparse.BCOO((jnp.asarray(data, jnp.float32), indices), shape=(m, n))


def dense_of(matrix):
    m, n = matrix.shape
    rows, cols = np.asarray(matrix.indices).T
    keep = (rows < m) & (cols < n)
    out = np.zeros((m, n))
    np.add.at(out, (rows[keep], cols[keep]), np.asarray(matrix.data)[keep])
    return jnp.asarray(out, jnp.float32)


# --------------------------------------------------------------------------- operator


@pytest.mark.parametrize("shape", [(6, 6), (4, 7), (7, 4)])
def test_operator_methods_match_dense(shape):
    matrix = random_sparse(*shape, pad=2)
    dense = dense_of(matrix)
    op = SparseMatrixLinearOperator(matrix)
    v = jnp.arange(shape[1], dtype=jnp.float32) - 1.5
    w = jnp.arange(shape[0], dtype=jnp.float32) * 0.5
    np.testing.assert_allclose(op.mv(v), dense @ v, atol=ATOL)
    np.testing.assert_allclose(op.as_matrix(), dense, atol=ATOL)
    np.testing.assert_allclose(op.T.mv(w), dense.T @ w, atol=ATOL)
    np.testing.assert_allclose(op.transpose().as_matrix(), dense.T, atol=ATOL)
    assert op.in_structure() == jax.ShapeDtypeStruct((shape[1],), jnp.float32)
    assert op.out_structure() == jax.ShapeDtypeStruct((shape[0],), jnp.float32)
    assert op.in_size() == shape[1] and op.out_size() == shape[0]
    np.testing.assert_allclose(lx.diagonal(op), jnp.diagonal(dense), atol=ATOL)
    assert lx.linearise(op) is op
    assert lx.materialise(op) is op


def test_tridiagonal_matches_dense():
    op = SparseMatrixLinearOperator(random_sparse(6, 6, density=0.6, pad=1))
    dense = op.as_matrix()
    diag, lower, upper = lx.tridiagonal(op)
    np.testing.assert_allclose(diag, jnp.diagonal(dense), atol=ATOL)
    np.testing.assert_allclose(lower, jnp.diagonal(dense, -1), atol=ATOL)
    np.testing.assert_allclose(upper, jnp.diagonal(dense, 1), atol=ATOL)


def test_conj_complex():
    matrix = random_sparse(5, 5)
    complex_matrix = jsparse.BCOO((matrix.data * (1 + 2j), matrix.indices), shape=matrix.shape)
    op = SparseMatrixLinearOperator(complex_matrix)
    np.testing.assert_allclose(lx.conj(op).as_matrix(), op.as_matrix().conj(), atol=ATOL)
    assert not lx.is_symmetric(
        SparseMatrixLinearOperator(complex_matrix, lx.positive_semidefinite_tag)
    )


def test_tags_and_queries():
    matrix = random_sparse(4, 4)
    plain = SparseMatrixLinearOperator(matrix)
    queries = [
        lx.is_symmetric,
        lx.is_diagonal,
        lx.is_tridiagonal,
        lx.has_unit_diagonal,
        lx.is_lower_triangular,
        lx.is_upper_triangular,
        lx.is_positive_semidefinite,
        lx.is_negative_semidefinite,
    ]
    assert not any(query(plain) for query in queries)
    tags = [
        lx.symmetric_tag,
        lx.diagonal_tag,
        lx.tridiagonal_tag,
        lx.unit_diagonal_tag,
        lx.lower_triangular_tag,
        lx.upper_triangular_tag,
        lx.positive_semidefinite_tag,
        lx.negative_semidefinite_tag,
    ]
    for query, tag in zip(queries, tags, strict=True):
        assert query(SparseMatrixLinearOperator(matrix, tag)), tag
    # Symmetric and diagonal implications, as for lineax.MatrixLinearOperator.
    assert lx.is_symmetric(SparseMatrixLinearOperator(matrix, lx.positive_semidefinite_tag))
    assert lx.is_symmetric(SparseMatrixLinearOperator(matrix, lx.diagonal_tag))
    assert lx.is_tridiagonal(SparseMatrixLinearOperator(matrix, lx.diagonal_tag))
    symmetric = SparseMatrixLinearOperator(matrix, lx.symmetric_tag)
    assert symmetric.T is symmetric
    lower = SparseMatrixLinearOperator(matrix, lx.lower_triangular_tag)
    assert lx.is_upper_triangular(lower.T)
    assert lx.is_diagonal(SparseMatrixLinearOperator(random_sparse(1, 1)))


def test_bad_inputs():
    with pytest.raises(TypeError, match="BCOO"):
        SparseMatrixLinearOperator(jnp.eye(3))
    with pytest.raises(ValueError, match="2-D"):
        SparseMatrixLinearOperator(jsparse.BCOO.fromdense(jnp.ones((2, 2, 2))))
    integer = jsparse.BCOO.fromdense(jnp.eye(3, dtype=jnp.int32))
    assert SparseMatrixLinearOperator(integer).as_matrix().dtype == jnp.float32
    with pytest.raises(ValueError, match="Symmetric"):
        SparseMatrixLinearOperator(random_sparse(3, 4), lx.symmetric_tag)


def test_operator_under_jit_and_as_pytree():
    op = SparseMatrixLinearOperator(random_sparse(5, 5))
    v = jnp.ones(5)
    out = eqx.filter_jit(lambda op, v: op.mv(v))(op, v)
    np.testing.assert_allclose(out, op.as_matrix() @ v, atol=ATOL)
    leaves = jax.tree_util.tree_leaves(op)
    assert len(leaves) == 1  # the data; the structure is static


# --------------------------------------------------------------------------- folding


def test_fold_h_plus_lambda_identity():
    H = SparseMatrixLinearOperator(random_sparse(6, 6, symmetric=True), lx.symmetric_tag)
    eye = lx.IdentityLinearOperator(H.in_structure())
    folded = fold_sparse(H + 0.5 * eye)
    assert isinstance(folded, SparseMatrixLinearOperator)
    np.testing.assert_allclose(folded.as_matrix(), H.as_matrix() + 0.5 * jnp.eye(6), atol=ATOL)
    assert lx.is_symmetric(folded)


def test_fold_expressions():
    a = SparseMatrixLinearOperator(random_sparse(5, 5, seed=1))
    b = SparseMatrixLinearOperator(random_sparse(5, 5, seed=2))
    d = jnp.arange(1.0, 6.0)
    diag = lx.DiagonalLinearOperator(d)
    tri = lx.TridiagonalLinearOperator(d, d[:-1] * 2, d[1:] * 3)
    A, B = a.as_matrix(), b.as_matrix()
    cases = [
        (a - 2.0 * b, A - 2 * B),
        (-a / 4.0, -A / 4),
        (diag @ a, jnp.diag(d) @ A),
        (a @ diag, A @ jnp.diag(d)),
        (a + tri, A + tri.as_matrix()),
        (lx.TaggedLinearOperator(a, ()) + diag, A + jnp.diag(d)),
    ]
    for expression, expected in cases:
        np.testing.assert_allclose(fold_sparse(expression).as_matrix(), expected, atol=ATOL)


def test_fold_tags():
    h = SparseMatrixLinearOperator(
        random_sparse(4, 4, symmetric=True), lx.positive_semidefinite_tag
    )
    eye = lx.IdentityLinearOperator(h.in_structure())
    assert lx.is_positive_semidefinite(fold_sparse(h + eye))
    assert lx.is_symmetric(fold_sparse(-h))
    assert lx.is_negative_semidefinite(fold_sparse(-h))

    @jax.jit
    def damped(lam):
        folded = fold_sparse(h + lam * eye)
        # Lineax stores scalars as arrays and cannot know their sign: PSD is dropped.
        assert not lx.is_positive_semidefinite(folded)
        assert lx.is_symmetric(folded)
        tagged = fold_sparse(h + lam * eye, lx.positive_semidefinite_tag)
        assert lx.is_positive_semidefinite(tagged)
        return tagged.as_matrix()

    np.testing.assert_allclose(damped(1.0), h.as_matrix() + jnp.eye(4), atol=ATOL)


def test_fold_rejects_unsupported():
    a = SparseMatrixLinearOperator(random_sparse(4, 4))
    with pytest.raises(TypeError, match="MatrixLinearOperator"):
        fold_sparse(a + lx.MatrixLinearOperator(jnp.ones((4, 4))))
    with pytest.raises(TypeError, match="composition"):
        fold_sparse(a @ a)


# --------------------------------------------------------------------------- SparseLU


def test_sparse_lu_matches_dense_lu():
    op = SparseMatrixLinearOperator(random_sparse(30, 30, density=0.1, dominant=True, pad=3))
    b = jnp.sin(jnp.arange(30.0))
    sparse = lx.linear_solve(op, b, SparseLU())
    dense = lx.linear_solve(lx.MatrixLinearOperator(op.as_matrix()), b, lx.LU())
    assert sparse.result == lx.RESULTS.successful
    np.testing.assert_allclose(sparse.value, dense.value, atol=ATOL)


def test_sparse_lu_symmetric_matches_cholesky():
    matrix = random_sparse(25, 25, density=0.1, symmetric=True, dominant=True)
    op = SparseMatrixLinearOperator(matrix, lx.positive_semidefinite_tag)
    b = jnp.cos(jnp.arange(25.0))
    dense = lx.linear_solve(
        lx.MatrixLinearOperator(op.as_matrix(), lx.positive_semidefinite_tag), b, lx.Cholesky()
    )
    np.testing.assert_allclose(lx.linear_solve(op, b, SparseLU()).value, dense.value, atol=ATOL)


def test_sparse_lu_jit_vmap_and_state_reuse():
    op = SparseMatrixLinearOperator(random_sparse(20, 20, density=0.15, dominant=True))
    dense = op.as_matrix()
    bs = jnp.stack([jnp.arange(20.0), jnp.ones(20), -(jnp.arange(20.0) ** 0.5)])
    solve = jax.jit(jax.vmap(lambda b: lx.linear_solve(op, b, SparseLU()).value))
    np.testing.assert_allclose(solve(bs), jnp.linalg.solve(dense, bs.T).T, atol=ATOL)
    solver = SparseLU()
    state = solver.init(op, {})
    for b in bs:
        x = lx.linear_solve(op, b, solver, state=state).value
        np.testing.assert_allclose(x, jnp.linalg.solve(dense, b), atol=ATOL)


def test_sparse_lu_factorization_is_reused():
    from asdex_opt._lineax import _superlu

    # Keep the cache private to this test's matrix by using a fresh, unique one.
    op = SparseMatrixLinearOperator(random_sparse(15, 15, seed=123, dominant=True))
    factor_calls = []
    original = _superlu._Factorization.__init__

    def counting_init(self, *args, **kwargs):
        factor_calls.append(1)
        original(self, *args, **kwargs)

    _superlu._Factorization.__init__ = counting_init
    try:
        loss = jax.jit(jax.grad(lambda b: jnp.sum(lx.linear_solve(op, b, SparseLU()).value ** 2)))
        for k in range(3):
            loss(jnp.arange(15.0) + k)
    finally:
        _superlu._Factorization.__init__ = original
    assert len(factor_calls) == 1  # forward and transposed solves share one factorization


def test_sparse_lu_gradients_match_dense():
    matrix = random_sparse(12, 12, density=0.2, dominant=True)
    b0 = jnp.linspace(-1.0, 1.0, 12)

    def sparse_loss(data, b):
        op = SparseMatrixLinearOperator(jsparse.BCOO((data, matrix.indices), shape=matrix.shape))
        return jnp.sum(jnp.sin(lx.linear_solve(op, b, SparseLU()).value))

    def dense_loss(dense, b):
        return jnp.sum(jnp.sin(lx.linear_solve(lx.MatrixLinearOperator(dense), b, lx.LU()).value))

    grad_data, grad_b = jax.grad(sparse_loss, (0, 1))(matrix.data, b0)
    grad_dense, grad_b_dense = jax.grad(dense_loss, (0, 1))(dense_of(matrix), b0)
    rows, cols = matrix.indices.T
    np.testing.assert_allclose(grad_b, grad_b_dense, atol=ATOL)
    np.testing.assert_allclose(grad_data, grad_dense[rows, cols], atol=ATOL)
    # Forward mode through the JVP rule, under jit.
    tangent = jnp.ones_like(matrix.data)
    _, jvp = jax.jit(lambda d: jax.jvp(lambda d: sparse_loss(d, b0), (d,), (tangent,)))(matrix.data)
    np.testing.assert_allclose(jvp, jnp.vdot(grad_data, tangent), rtol=1e-3)


def test_sparse_lu_folds_damped_operator():
    h = SparseMatrixLinearOperator(random_sparse(10, 10, symmetric=True), lx.symmetric_tag)
    eye = lx.IdentityLinearOperator(h.in_structure())
    b = jnp.ones(10)
    lam = 30.0
    x = jax.jit(lambda lam: lx.linear_solve(h + lam * eye, b, SparseLU()).value)(lam)
    np.testing.assert_allclose(x, jnp.linalg.solve(h.as_matrix() + lam * jnp.eye(10), b), atol=ATOL)
    grad = jax.grad(lambda lam: jnp.sum(lx.linear_solve(h + lam * eye, b, SparseLU()).value))(lam)
    expected = jax.grad(
        lambda lam: jnp.sum(jnp.linalg.solve(h.as_matrix() + lam * jnp.eye(10), b))
    )(lam)
    np.testing.assert_allclose(grad, expected, rtol=1e-3)


def test_sparse_lu_transposed_solve():
    op = SparseMatrixLinearOperator(random_sparse(10, 10, dominant=True, seed=5))
    b = jnp.arange(10.0)
    x = lx.linear_solve(op.T, b, SparseLU()).value
    np.testing.assert_allclose(x, jnp.linalg.solve(op.as_matrix().T, b), atol=ATOL)


def test_sparse_lu_complex_with_duplicates_and_padding():
    matrix = random_sparse(12, 12, seed=7, density=0.2, dominant=True, pad=2)
    rng = np.random.default_rng(7)
    data = matrix.data * (1.0 + 0.5j) + 1j * jnp.asarray(rng.normal(size=matrix.nse), jnp.float32)
    op = SparseMatrixLinearOperator(jsparse.BCOO((data, matrix.indices), shape=matrix.shape))
    dense = np.asarray(op.as_matrix())
    b = jnp.arange(12.0) + 1j
    for operator, expected in ((op, dense), (op.T, dense.T), (lx.conj(op), dense.conj())):
        x = lx.linear_solve(operator, b, SparseLU()).value
        np.testing.assert_allclose(x, np.linalg.solve(expected, b), atol=ATOL)


def _counting(monkeypatch, cls, name):
    """Counts the calls of ``cls.name`` for the rest of the test."""
    calls = []
    original = getattr(cls, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_sparse_lu_orders_once_per_pattern(monkeypatch):
    from asdex_opt._lineax import _superlu

    # A pattern no other test uses, as the cache is global.
    h = SparseMatrixLinearOperator(
        random_sparse(40, 40, seed=321, density=0.05, symmetric=True), lx.symmetric_tag
    )
    eye = lx.IdentityLinearOperator(h.in_structure())
    patterns = _counting(monkeypatch, _superlu._Pattern, "__init__")
    factorizations = _counting(monkeypatch, _superlu._Factorization, "__init__")
    solve = jax.jit(lambda lam, b: lx.linear_solve(fold_sparse(h + lam * eye), b, SparseLU()).value)
    b = jnp.linspace(-1.0, 1.0, 40)
    for lam in (20.0, 40.0, 80.0):  # the shifted systems of a Newton step
        expected = jnp.linalg.solve(h.as_matrix() + lam * jnp.eye(40), b)
        np.testing.assert_allclose(solve(lam, b), expected, atol=ATOL)
    assert len(patterns) == 1  # ordered once
    assert len(factorizations) == 3  # factored once per matrix
    solve(40.0, -b)
    assert len(factorizations) == 3  # a recent matrix is not factored again


def test_sparse_lu_orders_dense_rows_last_without_fill():
    from asdex_opt._lineax import _superlu

    n = 500  # an arrowhead: dense first row and column plus the diagonal
    k = np.arange(1, n)
    rows = np.r_[np.arange(n), np.zeros(n - 1, int), k]
    cols = np.r_[np.arange(n), k, np.zeros(n - 1, int)]
    data = np.r_[np.full(n, 4.0 * n), np.ones(2 * (n - 1))]
    indices = np.stack([rows, cols], axis=1).astype(np.int32)
    pattern = _superlu._Pattern(indices, (n, n))
    assert pattern.order[-1] == 0
    lu = _superlu._Factorization(pattern, data).lu
    assert lu.L.nnz + lu.U.nnz == 4 * n - 2  # no fill-in: L and U are half arrows
    matrix = jsparse.BCOO((jnp.asarray(data), jnp.asarray(indices)), shape=(n, n))
    b = jnp.cos(jnp.arange(float(n)))
    x = lx.linear_solve(SparseMatrixLinearOperator(matrix), b, SparseLU()).value
    np.testing.assert_allclose(x, np.linalg.solve(dense_of(matrix), b), rtol=1e-5)


def test_sparse_lu_nonsymmetric_pattern_uses_colamd(monkeypatch):
    from asdex_opt._lineax import _superlu

    specs = []
    original = _superlu._superlu_ordering
    monkeypatch.setattr(
        _superlu,
        "_superlu_ordering",
        lambda pattern, spec: specs.append(spec) or original(pattern, spec),
    )
    matrix = random_sparse(30, 30, seed=11, density=0.08, dominant=True)
    indices = np.asarray(matrix.indices)
    _superlu._Pattern(indices, matrix.shape)
    _superlu._Pattern(np.concatenate([indices, indices[:, ::-1]]), matrix.shape)
    assert specs == ["COLAMD", "MMD_AT_PLUS_A"]


@pytest.mark.parametrize(
    "dense",
    [
        jnp.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]]),  # rank deficient
        jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),  # zero row
        # Neumann Laplacian: singular, but rounding leaves a tiny nonzero pivot.
        jnp.array([[1.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 1.0]]) / 3.0,
    ],
)
def test_sparse_lu_singular_is_reported(dense):
    op = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(dense))
    b = jnp.ones(3)
    solution = lx.linear_solve(op, b, SparseLU(), throw=False)
    assert solution.result != lx.RESULTS.successful
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"non-finite|singular"):
        jax.block_until_ready(lx.linear_solve(op, b, SparseLU()).value)


def test_sparse_lu_non_square_raises():
    op = SparseMatrixLinearOperator(random_sparse(4, 6))
    with pytest.raises(ValueError, match="square"):
        lx.linear_solve(op, jnp.ones(4), SparseLU())


# --------------------------------------------------------------------------- iterative


def poisson_1d(n):
    k = np.arange(n)
    rows = np.r_[k, k[1:], k[:-1]]
    cols = np.r_[k, k[:-1], k[1:]]
    data = np.r_[np.full(n, 2.0) + np.linspace(0, 3, n), -np.ones(n - 1), -np.ones(n - 1)]
    indices = jnp.asarray(np.stack([rows, cols], 1), jnp.int32)
    return jsparse.BCOO((jnp.asarray(data, jnp.float32), indices), shape=(n, n))


@pytest.mark.parametrize(
    "inner, tags",
    [
        (lx.CG(rtol=1e-6, atol=1e-6), lx.positive_semidefinite_tag),
        (lx.GMRES(rtol=1e-6, atol=1e-6), ()),
        (lx.BiCGStab(rtol=1e-6, atol=1e-6), ()),
    ],
)
def test_preconditioned_krylov_matches_dense(inner, tags):
    op = SparseMatrixLinearOperator(poisson_1d(40), tags)
    b = jnp.sin(jnp.arange(40.0))
    solver = Preconditioned(inner)
    x = jax.jit(lambda b: lx.linear_solve(op, b, solver).value)(b)
    np.testing.assert_allclose(x, jnp.linalg.solve(op.as_matrix(), b), atol=1e-3)
    grad = jax.grad(lambda b: jnp.sum(lx.linear_solve(op, b, solver).value ** 2))(b)
    expected = jax.grad(lambda b: jnp.sum(jnp.linalg.solve(op.as_matrix(), b) ** 2))(b)
    np.testing.assert_allclose(grad, expected, rtol=1e-2, atol=1e-3)


def test_jacobi_reduces_cg_steps():
    # Badly scaled SPD matrix: D A D with D spanning 3 orders of magnitude.
    matrix = poisson_1d(60)
    d = jnp.logspace(0, 1.5, 60)
    scaled = SparseMatrixLinearOperator(
        jsparse.BCOO(
            (matrix.data * d[matrix.indices[:, 0]] * d[matrix.indices[:, 1]], matrix.indices),
            shape=matrix.shape,
        ),
        lx.positive_semidefinite_tag,
    )
    b = jnp.ones(60)
    plain = lx.linear_solve(scaled, b, lx.CG(rtol=1e-5, atol=1e-5), throw=False)
    jacobi = lx.linear_solve(scaled, b, Preconditioned(lx.CG(rtol=1e-5, atol=1e-5)))
    assert jacobi.stats["num_steps"] < plain.stats["num_steps"]


def test_jacobi_cg_large_float32():
    # Regression: lineax.CG's breakdown test `|pᵀAp| > 100 n ε |rᵀM⁻¹r|` fails for every
    # Jacobi-preconditioned step once 100 n ε > 1 (float32, n ≥ 84 000): NaN at once.
    n = 100_000
    k = np.arange(n)
    rows, cols = np.r_[k, k[:-1], k[1:]], np.r_[k, k[1:], k[:-1]]
    data = np.r_[np.full(n, 14.0), -np.ones(2 * (n - 1))]  # 12 I + 1-D Laplacian
    matrix = jsparse.BCOO(
        (jnp.asarray(data, jnp.float32), jnp.asarray(np.stack([rows, cols], 1), jnp.int32)),
        shape=(n, n),
    )
    op = SparseMatrixLinearOperator(matrix, lx.positive_semidefinite_tag)
    b = jnp.sin(jnp.arange(n, dtype=jnp.float32))
    solution = lx.linear_solve(op, b, Preconditioned(lx.CG(rtol=1e-6, atol=1e-6)), throw=False)
    assert solution.result == lx.RESULTS.successful
    assert solution.value.dtype == jnp.float32
    np.testing.assert_allclose(op.mv(solution.value), b, atol=1e-4)
    plain = lx.linear_solve(op, b, lx.CG(rtol=1e-6, atol=1e-6)).value
    np.testing.assert_allclose(solution.value, plain, atol=1e-5)


def test_preconditioned_negative_definite_cg():
    op = SparseMatrixLinearOperator(poisson_1d(20), lx.positive_semidefinite_tag)
    neg = fold_sparse(-op)
    assert lx.is_negative_semidefinite(neg)
    b = jnp.ones(20)
    x = lx.linear_solve(neg, b, Preconditioned(lx.CG(rtol=1e-6, atol=1e-6))).value
    np.testing.assert_allclose(x, jnp.linalg.solve(-op.as_matrix(), b), atol=1e-3)


def test_jacobi_preconditioner_values():
    dense = jnp.array([[4.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, -2.0]])
    op = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(dense))
    np.testing.assert_allclose(lx.diagonal(jacobi_preconditioner(op)), [0.25, 1.0, -0.5])
    assert not lx.is_positive_semidefinite(jacobi_preconditioner(op))
    psd = SparseMatrixLinearOperator(
        jsparse.BCOO.fromdense(jnp.diag(jnp.array([2.0, 4.0]))), lx.positive_semidefinite_tag
    )
    assert lx.is_positive_semidefinite(jacobi_preconditioner(psd))


def test_preconditioned_bad_inputs():
    with pytest.raises(ValueError, match="Unknown preconditioner"):
        Preconditioned(lx.CG(rtol=1e-6, atol=1e-6), preconditioner="ilu")
    op = SparseMatrixLinearOperator(poisson_1d(5))
    with pytest.raises(ValueError, match="builds its own"):
        lx.linear_solve(
            op,
            jnp.ones(5),
            Preconditioned(lx.GMRES(rtol=1e-6, atol=1e-6)),
            options={"preconditioner": op},
        )


def test_block_diagonal_lu_matches_dense():
    # Blocks {0, 3}, {1}, {2, 4, 5} (a permuted block-diagonal matrix), plus padding.
    rng = np.random.default_rng(0)
    blocks = [[0, 3], [1], [2, 4, 5]]
    rows, cols = zip(*[(i, j) for b in blocks for i in b for j in b], strict=True)
    rows, cols = np.array(rows), np.array(cols)
    data = rng.normal(size=rows.size) + 4.0 * (rows == cols)
    indices = np.stack([np.r_[rows, 6], np.r_[cols, 6]], axis=1)
    matrix = jsparse.BCOO((jnp.asarray(np.r_[data, 1.0]), jnp.asarray(indices)), shape=(6, 6))
    op = SparseMatrixLinearOperator(matrix)
    solver = BlockDiagonalLU.from_pattern(rows, cols, 6)
    assert (solver.num_blocks, solver.block_size) == (3, 3)
    b = jnp.arange(1.0, 7.0)
    dense = dense_of(matrix)
    shifted = fold_sparse(op + 0.5 * lx.IdentityLinearOperator(op.in_structure()))
    x = jax.jit(lambda b: lx.linear_solve(shifted, b, solver).value)(b)
    np.testing.assert_allclose(x, np.linalg.solve(dense + 0.5 * np.eye(6), b), rtol=1e-4)
    # Reverse mode uses the transposed blocks.
    grad = jax.grad(lambda b: jnp.sum(lx.linear_solve(op, b, solver).value ** 2))(b)
    expected = jax.grad(lambda b: jnp.sum(jnp.linalg.solve(dense, b) ** 2))(b)
    np.testing.assert_allclose(grad, expected, rtol=1e-3, atol=1e-5)
    # A nonzero outside the blocks, or a singular block: a failure, never a wrong answer.
    outside = fold_sparse(op + SparseMatrixLinearOperator(jsparse.BCOO.fromdense(jnp.eye(6, k=1))))
    assert lx.linear_solve(outside, b, solver, throw=False).result == lx.RESULTS.singular
    zero = jsparse.BCOO((jnp.zeros(rows.size), jnp.stack([rows, cols], 1)), shape=(6, 6))
    singular = SparseMatrixLinearOperator(zero)
    assert lx.linear_solve(singular, b, solver, throw=False).result == lx.RESULTS.singular


def test_block_diagonal_lu_rejects_large_blocks():
    matrix = poisson_1d(40)
    rows, cols = np.asarray(matrix.indices).T
    assert BlockDiagonalLU.from_pattern(rows, cols, 40) is None
    diagonal = BlockDiagonalLU.from_pattern(np.arange(40), np.arange(40), 40)
    assert (diagonal.num_blocks, diagonal.block_size) == (40, 1)
