//! [`impl_ledger_via_backend!`]: the [`Ledger`](crate::Ledger) implementation of every
//! [`ContractBackend`](crate::backend::ContractBackend), delegating each method to
//! [`registry_ops`](crate::registry_ops) (except [`for_signer`](crate::Ledger::for_signer),
//! which wraps the type's inherent `with_signer`).

/// Implements [`Ledger`](crate::Ledger) for a type that implements
/// [`ContractBackend`](crate::backend::ContractBackend) by delegating to
/// [`registry_ops`](crate::registry_ops). The type must also have an inherent
/// `fn with_signer(&self, PrivateKeySigner) -> Self` and be `'static`.
macro_rules! impl_ledger_via_backend {
    ($ty:ty) => {
        #[::async_trait::async_trait]
        impl $crate::ledger::Ledger for $ty {
            fn sender(&self) -> ::alloy::primitives::Address {
                $crate::backend::ContractBackend::sender(self)
            }

            fn registry_address(&self) -> ::alloy::primitives::Address {
                $crate::backend::ContractBackend::registry(self)
            }

            fn for_signer(
                &self,
                signer: ::alloy::signers::local::PrivateKeySigner,
            ) -> ::std::sync::Arc<dyn $crate::ledger::Ledger> {
                ::std::sync::Arc::new(<$ty>::with_signer(self, signer))
            }

            async fn create_record(
                &self,
                manifest_cid: &str,
                policy_hash: [u8; 32],
            ) -> $crate::ledger::LedgerResult<$crate::types::CreatedRecord> {
                $crate::registry_ops::create_record(self, manifest_cid, policy_hash).await
            }

            async fn update_record(
                &self,
                record: $crate::types::RecordId,
                manifest_cid: &str,
                policy_hash: [u8; 32],
            ) -> $crate::ledger::LedgerResult<$crate::types::TxReceipt> {
                $crate::registry_ops::update_record(self, record, manifest_cid, policy_hash).await
            }

            async fn grant_access(
                &self,
                record: $crate::types::RecordId,
                user: ::alloy::primitives::Address,
            ) -> $crate::ledger::LedgerResult<$crate::types::TxReceipt> {
                $crate::registry_ops::grant_access(self, record, user).await
            }

            async fn revoke_access(
                &self,
                record: $crate::types::RecordId,
                user: ::alloy::primitives::Address,
            ) -> $crate::ledger::LedgerResult<$crate::types::TxReceipt> {
                $crate::registry_ops::revoke_access(self, record, user).await
            }

            async fn request_access(
                &self,
                record: $crate::types::RecordId,
            ) -> $crate::ledger::LedgerResult<$crate::types::TxReceipt> {
                $crate::registry_ops::request_access(self, record).await
            }

            async fn deny_access(
                &self,
                record: $crate::types::RecordId,
                user: ::alloy::primitives::Address,
            ) -> $crate::ledger::LedgerResult<$crate::types::TxReceipt> {
                $crate::registry_ops::deny_access(self, record, user).await
            }

            async fn log_access(
                &self,
                record: $crate::types::RecordId,
            ) -> $crate::ledger::LedgerResult<$crate::types::TxReceipt> {
                $crate::registry_ops::log_access(self, record).await
            }

            async fn anchor_index(
                &self,
                partition: [u8; 32],
                shard_seq: u64,
                shard_cid: &str,
                merkle_root: [u8; 32],
            ) -> $crate::ledger::LedgerResult<$crate::types::TxReceipt> {
                $crate::registry_ops::anchor_index(self, partition, shard_seq, shard_cid, merkle_root)
                    .await
            }

            async fn publish_capsule(
                &self,
                partition: [u8; 32],
                epoch: u64,
                capsule_cid: &str,
                policy_hash: [u8; 32],
            ) -> $crate::ledger::LedgerResult<$crate::types::TxReceipt> {
                $crate::registry_ops::publish_capsule(
                    self,
                    partition,
                    epoch,
                    capsule_cid,
                    policy_hash,
                )
                .await
            }

            async fn record(
                &self,
                record: $crate::types::RecordId,
            ) -> $crate::ledger::LedgerResult<$crate::types::RecordInfo> {
                $crate::registry_ops::record(self, record).await
            }

            async fn record_count(&self) -> $crate::ledger::LedgerResult<u64> {
                $crate::registry_ops::record_count(self).await
            }

            async fn can_access(
                &self,
                record: $crate::types::RecordId,
                user: ::alloy::primitives::Address,
            ) -> $crate::ledger::LedgerResult<bool> {
                $crate::registry_ops::can_access(self, record, user).await
            }

            async fn access_state(
                &self,
                record: $crate::types::RecordId,
                user: ::alloy::primitives::Address,
            ) -> $crate::ledger::LedgerResult<$crate::types::AccessState> {
                $crate::registry_ops::access_state(self, record, user).await
            }

            async fn records_of(
                &self,
                owner: ::alloy::primitives::Address,
            ) -> $crate::ledger::LedgerResult<Vec<$crate::types::RecordId>> {
                $crate::registry_ops::records_of(self, owner).await
            }

            async fn shared_with(
                &self,
                user: ::alloy::primitives::Address,
            ) -> $crate::ledger::LedgerResult<Vec<$crate::types::RecordId>> {
                $crate::registry_ops::shared_with(self, user).await
            }

            async fn pending_requests(
                &self,
                owner: ::alloy::primitives::Address,
            ) -> $crate::ledger::LedgerResult<Vec<$crate::types::AccessRequest>> {
                $crate::registry_ops::pending_requests(self, owner).await
            }

            async fn audit_trail(
                &self,
                record: $crate::types::RecordId,
            ) -> $crate::ledger::LedgerResult<Vec<$crate::types::AuditEntry>> {
                $crate::registry_ops::audit_trail(self, record).await
            }

            async fn index_anchor(
                &self,
                anchorer: ::alloy::primitives::Address,
                partition: [u8; 32],
                shard_seq: u64,
            ) -> $crate::ledger::LedgerResult<Option<$crate::types::IndexAnchor>> {
                $crate::registry_ops::index_anchor(self, anchorer, partition, shard_seq).await
            }

            async fn capsule(
                &self,
                publisher: ::alloy::primitives::Address,
                partition: [u8; 32],
                epoch: u64,
            ) -> $crate::ledger::LedgerResult<Option<$crate::types::Capsule>> {
                $crate::registry_ops::capsule(self, publisher, partition, epoch).await
            }

            async fn capsules(
                &self,
                publisher: Option<::alloy::primitives::Address>,
            ) -> $crate::ledger::LedgerResult<Vec<$crate::types::Capsule>> {
                $crate::registry_ops::capsules(self, publisher).await
            }

            async fn index_anchors(
                &self,
                anchorer: ::alloy::primitives::Address,
                partition: [u8; 32],
            ) -> $crate::ledger::LedgerResult<Vec<$crate::types::IndexAnchor>> {
                $crate::registry_ops::index_anchors(self, anchorer, partition).await
            }
        }
    };
}
pub(crate) use impl_ledger_via_backend;
