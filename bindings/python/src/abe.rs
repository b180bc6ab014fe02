//! CP-ABE: policies, the FAME and BSW07 schemes, their keys and ciphertexts, and the
//! hybrid envelope. Every pairing operation runs with the GIL released.

use crate::errors::{abe_error, policy_error};
use medseal_abe::policy::Node;
use medseal_abe::{AttributeSet, Encoding, Scheme, envelope};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyType};
use rand_core::OsRng;

/// An access policy, e.g. `role:doctor and (dept:cardiology or dept:oncology)`.
///
/// `Policy(text)` parses (raising `medseal.PolicyError` with the byte offset of the
/// problem); `str()` is the canonical form, which parses back to an equal policy.
#[pyclass(name = "Policy", module = "medseal", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct PyPolicy {
    pub(crate) inner: medseal_abe::Policy,
}

/// The attribute texts of a policy tree in order of first appearance: `name:value` (or
/// `name`) for attribute leaves, the attribute name for comparisons (`level >= 3`).
fn collect_attributes(node: &Node, out: &mut Vec<String>) {
    let text = match node {
        Node::Attribute(a) => a.label(),
        Node::Compare { name, .. } => name.clone(),
        Node::And(children) | Node::Or(children) | Node::Threshold { children, .. } => {
            for c in children {
                collect_attributes(c, out);
            }
            return;
        }
        _ => return,
    };
    if !out.contains(&text) {
        out.push(text);
    }
}

#[pymethods]
impl PyPolicy {
    /// Parses policy text.
    #[new]
    fn new(text: String) -> PyResult<Self> {
        medseal_abe::Policy::parse(&text)
            .map(|inner| Self { inner })
            .map_err(|e| policy_error(&e))
    }

    /// The attributes the policy names, in order of first appearance (numeric
    /// comparisons contribute their attribute name).
    #[getter]
    fn attributes(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_attributes(self.inner.root(), &mut out);
        out
    }

    /// Whether a key with these attributes would satisfy the policy.
    fn is_satisfied_by(&self, attributes: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.is_satisfied_by(&attribute_set(attributes)?))
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Policy({:?})", self.inner.to_string())
    }
}

/// A policy argument: a `Policy` object (borrowed, not copied) or policy text.
pub(crate) enum PolicyArg<'py> {
    Object(Bound<'py, PyPolicy>),
    Parsed(medseal_abe::Policy),
}

impl PolicyArg<'_> {
    /// The policy.
    pub(crate) fn get(&self) -> &medseal_abe::Policy {
        match self {
            PolicyArg::Object(p) => &p.get().inner,
            PolicyArg::Parsed(p) => p,
        }
    }
}

/// Accepts `Policy | str`.
pub(crate) fn policy_arg<'py>(obj: &Bound<'py, PyAny>) -> PyResult<PolicyArg<'py>> {
    if let Ok(p) = obj.cast::<PyPolicy>() {
        return Ok(PolicyArg::Object(p.clone()));
    }
    if obj.is_instance_of::<PyString>() {
        let text: String = obj.extract()?;
        return medseal_abe::Policy::parse(&text)
            .map(PolicyArg::Parsed)
            .map_err(|e| policy_error(&e));
    }
    Err(PyTypeError::new_err(format!(
        "policy must be a medseal.Policy or a str, not {}",
        obj.get_type().name()?
    )))
}

/// Accepts an iterable of attribute strings (`role:doctor`, `level=5`), not a bare str.
pub(crate) fn attribute_set(obj: &Bound<'_, PyAny>) -> PyResult<AttributeSet> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "attributes must be an iterable of str, not a single str",
        ));
    }
    let mut items = Vec::new();
    for item in obj.try_iter()? {
        items.push(item?.extract::<String>()?);
    }
    AttributeSet::parse(&items).map_err(|e| policy_error(&e))
}

/// Generates the key and ciphertext classes of one scheme and the scheme class itself.
macro_rules! scheme_classes {
    (
        scheme: $S:ty, name: $name:literal, class: $Class:ident,
        public_key: $Pk:ident, master_key: $Msk:ident, user_key: $Uk:ident,
        ciphertext: $Ct:ident $(,)?
    ) => {
        scheme_classes!(@object $S, $Pk, PublicKey, concat!($name, " public parameters. Keep one object alive and reuse it: it caches attribute hashes, so repeated encryptions and key generations are warm."), {});
        scheme_classes!(@object $S, $Msk, MasterKey, concat!($name, " master secret of the attribute authority. Keep it secret."), {});
        scheme_classes!(@object $S, $Uk, UserKey, concat!($name, " user key, bound to an attribute set. Keep it secret."), {
            /// The attributes the key was issued for.
            #[getter]
            fn attributes(&self) -> Vec<String> {
                <$S as Scheme>::attributes(&self.inner).items().collect()
            }
        });
        scheme_classes!(@object $S, $Ct, Ciphertext, concat!($name, " KEM ciphertext, carrying its policy."), {
            /// The policy the ciphertext was encrypted under.
            #[getter]
            fn policy(&self) -> PyPolicy {
                PyPolicy { inner: <$S as Scheme>::policy(&self.inner).clone() }
            }
        });

        #[doc = concat!("The ", $name, " scheme: setup, key generation, key encapsulation and the envelope (all static methods).")]
        #[pyclass(module = "medseal", frozen)]
        pub(crate) struct $Class;

        #[pymethods]
        impl $Class {
            /// Generates public parameters and the master secret.
            #[staticmethod]
            fn setup(py: Python<'_>) -> ($Pk, $Msk) {
                let (pk, msk) = py.detach(|| <$S as Scheme>::setup(&mut OsRng));
                ($Pk { inner: pk }, $Msk { inner: msk })
            }

            /// Issues a key for an iterable of attributes.
            #[staticmethod]
            fn keygen(
                py: Python<'_>,
                pk: PyRef<'_, $Pk>,
                msk: PyRef<'_, $Msk>,
                attributes: &Bound<'_, PyAny>,
            ) -> PyResult<$Uk> {
                let attrs = attribute_set(attributes)?;
                let (pk, msk) = (&pk.inner, &msk.inner);
                py.detach(|| <$S as Scheme>::keygen(pk, msk, &attrs, &mut OsRng))
                    .map(|inner| $Uk { inner })
                    .map_err(abe_error)
            }

            /// Encapsulates a fresh 32-byte key under a policy: `(key, ciphertext)`.
            #[staticmethod]
            fn encapsulate<'py>(
                py: Python<'py>,
                pk: PyRef<'py, $Pk>,
                policy: &Bound<'py, PyAny>,
            ) -> PyResult<(Bound<'py, PyBytes>, $Ct)> {
                let policy = policy_arg(policy)?;
                let (pk, policy) = (&pk.inner, policy.get());
                let (key, ct) = py
                    .detach(|| <$S as Scheme>::encapsulate(pk, policy, &mut OsRng))
                    .map_err(abe_error)?;
                Ok((PyBytes::new(py, key.as_bytes()), $Ct { inner: ct }))
            }

            /// Recovers the 32-byte key of a ciphertext.
            #[staticmethod]
            fn decapsulate<'py>(
                py: Python<'py>,
                key: PyRef<'py, $Uk>,
                ct: PyRef<'py, $Ct>,
            ) -> PyResult<Bound<'py, PyBytes>> {
                let (key, ct) = (&key.inner, &ct.inner);
                let kem = py
                    .detach(|| <$S as Scheme>::decapsulate(key, ct))
                    .map_err(abe_error)?;
                Ok(PyBytes::new(py, kem.as_bytes()))
            }

            /// Encrypts bytes under a policy into an envelope (KEM, HKDF, AES-256-GCM;
            /// `aad` is authenticated, not stored).
            #[staticmethod]
            #[pyo3(signature = (pk, policy, plaintext, aad = b"".as_slice()))]
            fn encrypt<'py>(
                py: Python<'py>,
                pk: PyRef<'py, $Pk>,
                policy: &Bound<'py, PyAny>,
                plaintext: &[u8],
                aad: &[u8],
            ) -> PyResult<Bound<'py, PyBytes>> {
                let policy = policy_arg(policy)?;
                let (pk, policy) = (&pk.inner, policy.get());
                let sealed = py
                    .detach(|| envelope::seal::<$S, _>(pk, policy, aad, plaintext, &mut OsRng))
                    .map_err(abe_error)?;
                Ok(PyBytes::new(py, &sealed))
            }

            /// Decrypts an envelope with the same `aad` it was encrypted with.
            #[staticmethod]
            #[pyo3(signature = (key, envelope, aad = b"".as_slice()))]
            fn decrypt<'py>(
                py: Python<'py>,
                key: PyRef<'py, $Uk>,
                envelope: &[u8],
                aad: &[u8],
            ) -> PyResult<Bound<'py, PyBytes>> {
                let key = &key.inner;
                let plain = py
                    .detach(|| envelope::open::<$S>(key, aad, envelope))
                    .map_err(abe_error)?;
                Ok(PyBytes::new(py, &plain))
            }

            /// The policy an envelope was encrypted under (public; no key needed).
            #[staticmethod]
            fn inspect_policy(envelope: &[u8]) -> PyResult<PyPolicy> {
                envelope::inspect::<$S>(envelope)
                    .map(|h| PyPolicy { inner: h.policy().clone() })
                    .map_err(abe_error)
            }
        }
    };

    (@object $S:ty, $T:ident, $assoc:ident, $doc:expr, { $($extra:tt)* }) => {
        #[doc = $doc]
        #[pyclass(module = "medseal", frozen)]
        pub(crate) struct $T {
            pub(crate) inner: <$S as Scheme>::$assoc,
        }

        #[pymethods]
        impl $T {
            /// The canonical encoding.
            fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
                PyBytes::new(py, &self.inner.to_bytes())
            }

            /// Decodes the canonical encoding (raises `medseal.DecodeError`).
            #[classmethod]
            fn from_bytes(_cls: &Bound<'_, PyType>, py: Python<'_>, data: &[u8]) -> PyResult<Self> {
                // Decoding checks subgroup membership of every point: release the GIL.
                py.detach(|| <<$S as Scheme>::$assoc as Encoding>::from_bytes(data))
                    .map(|inner| Self { inner })
                    .map_err(abe_error)
            }

            fn __repr__(&self) -> String {
                format!("<medseal.{}>", stringify!($T))
            }

            $($extra)*
        }
    };
}

scheme_classes! {
    scheme: medseal_abe::Fame, name: "FAME", class: Fame,
    public_key: FamePublicKey, master_key: FameMasterKey, user_key: FameUserKey,
    ciphertext: FameCiphertext,
}

scheme_classes! {
    scheme: medseal_abe::Bsw07, name: "BSW07", class: Bsw07,
    public_key: Bsw07PublicKey, master_key: Bsw07MasterKey, user_key: Bsw07UserKey,
    ciphertext: Bsw07Ciphertext,
}

/// Registers the classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPolicy>()?;
    m.add_class::<Fame>()?;
    m.add_class::<FamePublicKey>()?;
    m.add_class::<FameMasterKey>()?;
    m.add_class::<FameUserKey>()?;
    m.add_class::<FameCiphertext>()?;
    m.add_class::<Bsw07>()?;
    m.add_class::<Bsw07PublicKey>()?;
    m.add_class::<Bsw07MasterKey>()?;
    m.add_class::<Bsw07UserKey>()?;
    m.add_class::<Bsw07Ciphertext>()?;
    Ok(())
}
