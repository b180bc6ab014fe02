//! The searchable encrypted index (medseal-index's `sse` module): keywords, record
//! references, partitions and their keys, the owner's batches, the host's search and
//! proofs, and the reader's keyword keys with verification.

use crate::abe::{FamePublicKey, FameUserKey, PyPolicy, policy_arg};
use crate::errors::{bytes32, index_error, input_error, keyword_error};
use medseal_index::sse::{
    Capsule, EncryptedRef, IndexHost, KeywordKey, OwnerPartition, Padding, Partition, PartitionId,
    PartitionKey, SearchToken, Shard, ShardRoot, VerifiableAnswer,
};
use medseal_index::{Keyword, RecordRef};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};
use rand_core::OsRng;

/// A search keyword in canonical form (`type:value`, e.g. `icd10:I10`, `term:asthma`).
/// `Keyword(text)` parses typed text; invalid input raises `medseal.KeywordError`.
#[pyclass(name = "Keyword", module = "medseal", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct PyKeyword {
    inner: Keyword,
}

#[pymethods]
impl PyKeyword {
    /// Parses `type:value` text (e.g. `icd10:I10`).
    #[new]
    fn new(text: String) -> PyResult<Self> {
        Keyword::parse(&text)
            .map(|inner| Self { inner })
            .map_err(|e| keyword_error(&e))
    }

    /// An ICD-10 code keyword (normalised: `i10` and `I10` are one keyword).
    #[staticmethod]
    fn icd10(code: String) -> PyResult<Self> {
        Keyword::icd10(&code)
            .map(|inner| Self { inner })
            .map_err(|e| keyword_error(&e))
    }

    /// A free-text term keyword (normalised: case, Unicode form, spacing).
    #[staticmethod]
    fn term(text: String) -> PyResult<Self> {
        Keyword::term(&text)
            .map(|inner| Self { inner })
            .map_err(|e| keyword_error(&e))
    }

    /// The type (`icd10`, `term`, ...).
    #[getter]
    fn kind(&self) -> String {
        self.inner.kind().to_owned()
    }

    /// The normalised value.
    #[getter]
    fn value(&self) -> String {
        self.inner.value().to_owned()
    }

    fn __str__(&self) -> String {
        self.inner.as_str().to_owned()
    }

    fn __repr__(&self) -> String {
        format!("Keyword({:?})", self.inner.as_str())
    }
}

/// A 32-byte record reference (e.g. the hash of a record's manifest CID). The all-zero
/// value is reserved (padding) and raises `medseal.InputError`.
#[pyclass(name = "RecordRef", module = "medseal", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct PyRecordRef {
    inner: RecordRef,
}

fn record_ref(data: &[u8]) -> PyResult<RecordRef> {
    RecordRef::new(bytes32(data, "a record reference")?).map_err(index_error)
}

#[pymethods]
impl PyRecordRef {
    /// Wraps 32 bytes.
    #[new]
    fn new(data: &[u8]) -> PyResult<Self> {
        record_ref(data).map(|inner| Self { inner })
    }

    /// The 32 bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.as_bytes())
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.to_bytes(py)
    }
}

/// An index partition: an owner's entries under one policy in one epoch.
#[pyclass(name = "Partition", module = "medseal", frozen)]
pub(crate) struct PyPartition {
    inner: Partition,
}

#[pymethods]
impl PyPartition {
    /// `Partition(owner, policy, epoch)`: `policy` is a `Policy` or policy text.
    #[new]
    fn new(owner: &[u8], policy: &Bound<'_, PyAny>, epoch: u64) -> PyResult<Self> {
        let policy = policy_arg(policy)?.get().clone();
        Partition::new(owner, policy, epoch)
            .map(|inner| Self { inner })
            .map_err(index_error)
    }

    /// The partition id (32 bytes, public: derived from owner, policy and epoch).
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.id().as_bytes())
    }

    /// The owner's identifier.
    #[getter]
    fn owner<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.owner())
    }

    /// The partition's policy.
    #[getter]
    fn policy(&self) -> PyPolicy {
        PyPolicy {
            inner: self.inner.policy().clone(),
        }
    }

    /// The epoch (bumped on revocation).
    #[getter]
    fn epoch(&self) -> u64 {
        self.inner.epoch()
    }
}

/// A partition's secret key `K` (anyone holding it can search the partition). Readers
/// obtain it by opening the partition's `Capsule` with a FAME user key.
#[pyclass(name = "PartitionKey", module = "medseal", frozen)]
pub(crate) struct PyPartitionKey {
    inner: PartitionKey,
}

#[pymethods]
impl PyPartitionKey {
    /// Wraps 32 key bytes (e.g. restored from the owner's protected storage).
    #[classmethod]
    fn from_bytes(_cls: &Bound<'_, PyType>, data: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: PartitionKey::from_bytes(bytes32(data, "a partition key")?),
        })
    }

    /// The key bytes (secret).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.as_bytes())
    }

    /// Constant-time comparison.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyPartitionKey>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> &'static str {
        "<medseal.PartitionKey (redacted)>"
    }
}

fn padding_arg(padding: Option<&Bound<'_, PyAny>>) -> PyResult<Padding> {
    let Some(p) = padding else {
        return Ok(Padding::None);
    };
    if let Ok(text) = p.extract::<String>() {
        return match text.as_str() {
            "pow2" => Ok(Padding::PowerOfTwo),
            other => Err(input_error(format!(
                "padding must be None, an int or \"pow2\", not {other:?}"
            ))),
        };
    }
    let multiple: u32 = p
        .extract()
        .map_err(|_| PyTypeError::new_err("padding must be None, an int or \"pow2\""))?;
    Ok(Padding::Multiple(multiple))
}

fn padding_value(py: Python<'_>, padding: Padding) -> PyResult<Bound<'_, PyAny>> {
    Ok(match padding {
        Padding::Multiple(b) if b > 1 => b.into_pyobject(py)?.into_any(),
        Padding::PowerOfTwo => "pow2".into_pyobject(py)?.into_any(),
        _ => py.None().into_bound(py),
    })
}

/// A data owner's state for one partition (holds the partition key: keep it private).
/// `batch` turns (keyword, record) pairs into the next immutable shard.
#[pyclass(name = "OwnerPartition", module = "medseal")]
pub(crate) struct PyOwnerPartition {
    inner: OwnerPartition,
}

#[pymethods]
impl PyOwnerPartition {
    /// A new partition state with a fresh random key. `padding`: `None`, `k` (pad every
    /// keyword's result count to a multiple of `k`) or `"pow2"` (to a power of two).
    #[classmethod]
    #[pyo3(signature = (partition, padding = None))]
    fn create(
        _cls: &Bound<'_, PyType>,
        partition: PyRef<'_, PyPartition>,
        padding: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let padding = padding_arg(padding)?;
        let inner =
            OwnerPartition::create(partition.inner.clone(), &mut OsRng).with_padding(padding);
        Ok(Self { inner })
    }

    /// The partition.
    #[getter]
    fn partition(&self) -> PyPartition {
        PyPartition {
            inner: self.inner.partition().clone(),
        }
    }

    /// The partition id (32 bytes).
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.id().as_bytes())
    }

    /// The partition key (secret).
    #[getter]
    fn key(&self) -> PyPartitionKey {
        PyPartitionKey {
            inner: self.inner.key().clone(),
        }
    }

    /// The padding: `None`, an int or `"pow2"`.
    #[getter]
    fn padding<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        padding_value(py, self.inner.padding())
    }

    /// The number of entries written so far for `keyword` (padding included).
    fn count(&self, keyword: PyRef<'_, PyKeyword>) -> u64 {
        self.inner.count(&keyword.inner)
    }

    /// The sequence number of the next shard.
    #[getter]
    fn next_shard_seq(&self) -> u64 {
        self.inner.next_shard_seq()
    }

    /// Builds the next shard from `(Keyword, RecordRef | bytes)` pairs and advances the
    /// state (deterministic: the same state and pairs give the same shard).
    fn batch(&mut self, py: Python<'_>, pairs: &Bound<'_, PyAny>) -> PyResult<PyShard> {
        let mut items: Vec<(Keyword, RecordRef)> = Vec::new();
        for pair in pairs.try_iter()? {
            let (keyword, record): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
            let keyword = keyword.cast::<PyKeyword>().map_err(|_| {
                PyTypeError::new_err("batch pairs must be (Keyword, RecordRef | bytes)")
            })?;
            let record = match record.cast::<PyRecordRef>() {
                Ok(r) => r.get().inner,
                Err(_) => record_ref(&record.extract::<Vec<u8>>()?)?,
            };
            items.push((keyword.get().inner.clone(), record));
        }
        let owner = &mut self.inner;
        py.detach(|| owner.batch(items.iter().map(|(k, r)| (k, *r))))
            .map(|inner| PyShard { inner })
            .map_err(index_error)
    }

    /// The state's canonical encoding (holds the partition key: secret).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// Decodes a state (raises `medseal.DecodeError`).
    #[classmethod]
    fn from_bytes(_cls: &Bound<'_, PyType>, data: &[u8]) -> PyResult<Self> {
        OwnerPartition::from_bytes(data)
            .map(|inner| Self { inner })
            .map_err(index_error)
    }

    fn __repr__(&self) -> &'static str {
        "<medseal.OwnerPartition (redacted)>"
    }
}

/// An immutable batch of index entries with a Merkle root (anchor the root on chain).
#[pyclass(name = "Shard", module = "medseal", frozen, eq)]
#[derive(PartialEq, Eq)]
pub(crate) struct PyShard {
    inner: Shard,
}

#[pymethods]
impl PyShard {
    /// The shard's Merkle root (32 bytes).
    fn root<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.root().as_bytes())
    }

    /// The id of the partition the shard belongs to.
    #[getter]
    fn partition_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.partition().as_bytes())
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// The canonical encoding.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// Decodes a shard (raises `medseal.DecodeError`).
    #[classmethod]
    fn from_bytes(_cls: &Bound<'_, PyType>, data: &[u8]) -> PyResult<Self> {
        Shard::from_bytes(data)
            .map(|inner| Self { inner })
            .map_err(index_error)
    }
}

/// A search token for one keyword in one partition (what a reader sends the host).
#[pyclass(name = "SearchToken", module = "medseal", frozen)]
pub(crate) struct PySearchToken {
    inner: SearchToken,
}

#[pymethods]
impl PySearchToken {
    /// The partition id the token searches.
    #[getter]
    fn partition_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.partition().as_bytes())
    }

    /// The canonical encoding.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// Decodes a token (raises `medseal.DecodeError`).
    #[classmethod]
    fn from_bytes(_cls: &Bound<'_, PyType>, data: &[u8]) -> PyResult<Self> {
        SearchToken::from_bytes(data)
            .map(|inner| Self { inner })
            .map_err(index_error)
    }
}

/// A host's answer with membership and absence proofs; check it with
/// `KeywordKey.verify(roots, answer)`.
#[pyclass(name = "VerifiableAnswer", module = "medseal", frozen)]
pub(crate) struct PyVerifiableAnswer {
    inner: VerifiableAnswer,
}

fn encrypted_refs<'py>(py: Python<'py>, values: &[EncryptedRef]) -> Vec<Bound<'py, PyBytes>> {
    values
        .iter()
        .map(|v| PyBytes::new(py, v.as_bytes()))
        .collect()
}

#[pymethods]
impl PyVerifiableAnswer {
    /// The encrypted values (unverified), as `IndexHost.search` returns them.
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        encrypted_refs(py, &self.inner.values())
    }

    /// The size of the proofs in bytes, as a host would send them.
    #[getter]
    fn proof_bytes(&self) -> usize {
        self.inner.proof_bytes()
    }

    fn __len__(&self) -> usize {
        self.inner.results.len()
    }
}

/// The index host: stores shards, answers searches (it learns neither keywords nor
/// records).
#[pyclass(name = "IndexHost", module = "medseal")]
pub(crate) struct PyIndexHost {
    inner: IndexHost,
}

fn parse_partition_id(data: &[u8]) -> PyResult<PartitionId> {
    Ok(PartitionId::from_bytes(bytes32(data, "a partition id")?))
}

#[pymethods]
impl PyIndexHost {
    /// An empty host.
    #[new]
    fn new() -> Self {
        Self {
            inner: IndexHost::new(),
        }
    }

    /// Adds a shard to its partition; returns its root. A shard repeating a label of its
    /// partition (e.g. inserted twice) raises `medseal.InputError`.
    fn insert_shard<'py>(
        &mut self,
        py: Python<'py>,
        shard: PyRef<'py, PyShard>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let root = self
            .inner
            .insert_shard(shard.inner.clone())
            .map_err(index_error)?;
        Ok(PyBytes::new(py, root.as_bytes()))
    }

    /// The encrypted values of the token's keyword, in order (unverified).
    fn search<'py>(
        &self,
        py: Python<'py>,
        token: PyRef<'py, PySearchToken>,
    ) -> Vec<Bound<'py, PyBytes>> {
        let (host, token) = (&self.inner, &token.inner);
        let values = py.detach(|| host.search(token));
        encrypted_refs(py, &values)
    }

    /// Searches and proves the answer against the partition's shard roots.
    fn prove(&self, py: Python<'_>, token: PyRef<'_, PySearchToken>) -> PyVerifiableAnswer {
        let (host, token) = (&self.inner, &token.inner);
        PyVerifiableAnswer {
            inner: py.detach(|| host.prove(token)),
        }
    }

    /// The roots of a partition's shards, in order.
    fn roots<'py>(
        &self,
        py: Python<'py>,
        partition_id: &[u8],
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let id = parse_partition_id(partition_id)?;
        Ok(self
            .inner
            .roots(&id)
            .iter()
            .map(|r| PyBytes::new(py, r.as_bytes()))
            .collect())
    }

    /// The number of entries the host holds for a partition.
    fn entry_count(&self, partition_id: &[u8]) -> PyResult<usize> {
        Ok(self.inner.entry_count(&parse_partition_id(partition_id)?))
    }
}

/// A reader's keys for one keyword in one partition: makes the search token, decrypts
/// and verifies answers.
#[pyclass(name = "KeywordKey", module = "medseal", frozen)]
pub(crate) struct PyKeywordKey {
    inner: KeywordKey,
}

#[pymethods]
impl PyKeywordKey {
    /// Derives the keyword's keys from the partition id and key.
    #[staticmethod]
    fn derive(
        partition_id: &[u8],
        key: PyRef<'_, PyPartitionKey>,
        keyword: PyRef<'_, PyKeyword>,
    ) -> PyResult<Self> {
        let id = parse_partition_id(partition_id)?;
        Ok(Self {
            inner: KeywordKey::derive(&id, &key.inner, &keyword.inner),
        })
    }

    /// The search token to send the host.
    fn token(&self) -> PySearchToken {
        PySearchToken {
            inner: self.inner.token(),
        }
    }

    /// Decrypts the host's values into record references (32 bytes each), dropping
    /// padding entries. Unverified: prefer `verify`.
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        values: Vec<Vec<u8>>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let values = values
            .iter()
            .map(|v| Ok(EncryptedRef::from_bytes(bytes32(v, "an encrypted value")?)))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(self
            .inner
            .decrypt(&values)
            .iter()
            .map(|r| PyBytes::new(py, r.as_bytes()))
            .collect())
    }

    /// Checks an answer against the partition's anchored shard roots (all of them, in
    /// order) and decrypts it. Raises `medseal.VerifyError` if the answer is not exactly
    /// the keyword's entries.
    fn verify<'py>(
        &self,
        py: Python<'py>,
        roots: Vec<Vec<u8>>,
        answer: PyRef<'py, PyVerifiableAnswer>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let roots = roots
            .iter()
            .map(|r| Ok(ShardRoot::from_bytes(bytes32(r, "a shard root")?)))
            .collect::<PyResult<Vec<_>>>()?;
        let (key, answer) = (&self.inner, &answer.inner);
        let records = py
            .detach(|| key.verify(&roots, answer))
            .map_err(index_error)?;
        Ok(records
            .iter()
            .map(|r| PyBytes::new(py, r.as_bytes()))
            .collect())
    }
}

/// A partition key sealed under the partition's policy with FAME (public; stored next to
/// the shards). Readers whose attributes satisfy the policy open it.
#[pyclass(name = "Capsule", module = "medseal", frozen)]
pub(crate) struct PyCapsule {
    inner: Capsule,
}

#[pymethods]
impl PyCapsule {
    /// Seals the partition key under the partition's policy.
    #[staticmethod]
    fn seal(
        py: Python<'_>,
        pk: PyRef<'_, FamePublicKey>,
        partition: PyRef<'_, PyPartition>,
        key: PyRef<'_, PyPartitionKey>,
    ) -> PyResult<Self> {
        let (pk, partition, key) = (&pk.inner, &partition.inner, &key.inner);
        py.detach(|| Capsule::seal(pk, partition, key, &mut OsRng))
            .map(|inner| Self { inner })
            .map_err(index_error)
    }

    /// Opens the capsule of partition `partition_id` with a FAME user key (raises
    /// `medseal.AccessDenied` if the key does not satisfy the policy).
    fn open(
        &self,
        py: Python<'_>,
        user_key: PyRef<'_, FameUserKey>,
        partition_id: &[u8],
    ) -> PyResult<PyPartitionKey> {
        let id = parse_partition_id(partition_id)?;
        let (capsule, key) = (&self.inner, &user_key.inner);
        py.detach(|| capsule.open(key, &id))
            .map(|inner| PyPartitionKey { inner })
            .map_err(index_error)
    }

    /// The policy the capsule is sealed under.
    #[getter]
    fn policy(&self) -> PyResult<PyPolicy> {
        self.inner
            .policy()
            .map(|inner| PyPolicy { inner })
            .map_err(index_error)
    }

    /// The canonical bytes (an envelope).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.as_bytes())
    }

    /// Parses a capsule (raises `medseal.DecodeError`).
    #[classmethod]
    fn from_bytes(_cls: &Bound<'_, PyType>, data: &[u8]) -> PyResult<Self> {
        Capsule::from_bytes(data)
            .map(|inner| Self { inner })
            .map_err(index_error)
    }
}

/// Registers the classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKeyword>()?;
    m.add_class::<PyRecordRef>()?;
    m.add_class::<PyPartition>()?;
    m.add_class::<PyPartitionKey>()?;
    m.add_class::<PyOwnerPartition>()?;
    m.add_class::<PyShard>()?;
    m.add_class::<PySearchToken>()?;
    m.add_class::<PyVerifiableAnswer>()?;
    m.add_class::<PyIndexHost>()?;
    m.add_class::<PyKeywordKey>()?;
    m.add_class::<PyCapsule>()?;
    Ok(())
}
