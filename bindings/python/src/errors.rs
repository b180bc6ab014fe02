//! The exception classes (defined in Python, `medseal/_errors.py`, so that they can derive
//! from both `medseal.Error` and `ValueError`) and the mapping of every library error
//! variant onto them.

use pyo3::PyErr;

/// The Python exception types, imported from `medseal._errors` on first use.
#[allow(unreachable_pub, missing_docs)]
mod py {
    pyo3::import_exception!(medseal._errors, Error);
    pyo3::import_exception!(medseal._errors, InputError);
    pyo3::import_exception!(medseal._errors, PolicyError);
    pyo3::import_exception!(medseal._errors, DecodeError);
    pyo3::import_exception!(medseal._errors, KeywordError);
    pyo3::import_exception!(medseal._errors, LimitError);
    pyo3::import_exception!(medseal._errors, AccessDenied);
    pyo3::import_exception!(medseal._errors, IntegrityError);
    pyo3::import_exception!(medseal._errors, VerifyError);
}

/// `medseal.InputError` (a `ValueError`) with `message`: bad input that no more specific
/// class covers (a wrong length, a reserved value, a key of another setup).
pub(crate) fn input_error(message: impl Into<String>) -> PyErr {
    py::InputError::new_err(message.into())
}

/// `medseal.PolicyError` with the parser's message.
pub(crate) fn policy_error(e: &medseal_abe::PolicyError) -> PyErr {
    py::PolicyError::new_err(e.to_string())
}

/// The Python exception of a medseal-abe error.
pub(crate) fn abe_error(e: medseal_abe::Error) -> PyErr {
    use medseal_abe::Error as E;
    let message = e.to_string();
    match e {
        E::Policy(_) => py::PolicyError::new_err(message),
        E::PolicyNotSatisfied => py::AccessDenied::new_err(message),
        E::Decryption => py::IntegrityError::new_err(message),
        E::Decode(_) => py::DecodeError::new_err(message),
        E::LimitExceeded { .. } => py::LimitError::new_err(message),
        E::MasterKeyMismatch => py::InputError::new_err(message),
        // I/O (streams are not exposed) and variants added later.
        _ => py::Error::new_err(message),
    }
}

/// The Python exception of a medseal-index error.
pub(crate) fn index_error(e: medseal_index::Error) -> PyErr {
    use medseal_index::Error as E;
    let message = e.to_string();
    match e {
        E::Keyword(_) => py::KeywordError::new_err(message),
        E::PolicyNotSatisfied => py::AccessDenied::new_err(message),
        E::Decryption => py::IntegrityError::new_err(message),
        E::Decode(_) => py::DecodeError::new_err(message),
        E::Verification(_) => py::VerifyError::new_err(message),
        E::LimitExceeded { .. } => py::LimitError::new_err(message),
        E::ReservedRecordRef | E::ShardConflict(_) | E::StaleOwnerState | E::UnknownPartition => {
            py::InputError::new_err(message)
        }
        E::Abe(inner) => abe_error(inner),
        // The disk cache (not exposed), a degenerate hash, and variants added later.
        _ => py::Error::new_err(message),
    }
}

/// `medseal.KeywordError` with the keyword parser's message.
pub(crate) fn keyword_error(e: &medseal_index::KeywordError) -> PyErr {
    py::KeywordError::new_err(e.to_string())
}

/// Exactly 32 bytes, or `medseal.InputError` naming `what`.
pub(crate) fn bytes32(data: &[u8], what: &str) -> Result<[u8; 32], PyErr> {
    <[u8; 32]>::try_from(data)
        .map_err(|_| input_error(format!("{what} must be 32 bytes, got {}", data.len())))
}
