//! The generic store (upstream's `registry/generic/registry.Store`): one implementation of get,
//! list, create, update, delete, deletecollection and watch that every resource goes through,
//! with each kind's [`Strategy`] plugged in. Writes go to storage; lists and watches are served
//! from the resource's [`WatchCache`].

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use ironplane_apimachinery::field::{self, ErrorList};
use ironplane_apimachinery::meta::now_rfc3339;
use ironplane_apimachinery::status::StatusCause;
use ironplane_apimachinery::validation::{
    ObjectMetaFields, validate_object_meta, validate_object_meta_update,
};
use ironplane_apimachinery::{ApiError, GroupResource, Object, continuation};
use ironplane_storage::{
    KeyValue, ListOptions as StorageListOptions, Revision, Storage, StorageError,
};

use crate::cacher::{
    CacheListPage, CacheOptions, CacheWatcher, CachedObject, WatchCache, WatchStart,
};
use crate::predicate::SelectionPredicate;
use crate::strategy::Strategy;

/// Options of a create.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// `dryRun=All`: validate and answer, but write nothing.
    pub dry_run: bool,
}

/// Options of an update or patch.
#[derive(Clone, Debug, Default)]
pub struct UpdateOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// Preconditions of a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// The uid the object must have.
    pub uid: Option<String>,
    /// The resourceVersion the object must have.
    pub resource_version: Option<String>,
}

/// Options of a delete (`metav1.DeleteOptions`).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// uid and resourceVersion preconditions.
    pub preconditions: Preconditions,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`: `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
}

/// How a list's resourceVersion is matched (`resourceVersionMatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionMatch {
    /// At least this fresh.
    NotOlderThan,
    /// Exactly this revision.
    Exact,
}

/// What a list asks for.
#[derive(Clone, Default)]
pub struct ListRequest {
    /// The namespace, or `None` for all namespaces (and cluster-scoped kinds).
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub predicate: SelectionPredicate,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub version_match: Option<VersionMatch>,
    /// `limit` (0 or absent: everything).
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
}

/// A page of a list.
#[derive(Debug)]
pub struct ListResult {
    /// The objects, in key order.
    pub items: Vec<Arc<CachedObject>>,
    /// The revision the list reflects.
    pub revision: Revision,
    /// The token for the next page.
    pub continue_token: Option<String>,
    /// How many matching objects remain, when known.
    pub remaining: Option<i64>,
}

/// The outcome of a delete.
#[derive(Debug)]
pub enum DeleteResult {
    /// The object is gone; this was its last state.
    Deleted(Object),
    /// The object is kept until its finalizers are removed; this is its new state.
    Pending(Object),
}

/// The state a write works from: the object, and the revision the write is conditional on.
struct Base {
    object: Object,
    mod_revision: Revision,
    /// The stored bytes; `None` for the watch cache's copy, a guess (see `Store::first_base`).
    stored: Option<Bytes>,
}

impl Base {
    fn is_guess(&self) -> bool {
        self.stored.is_none()
    }

    /// Whether `value` is what the base holds in storage (a guess is encoded to compare).
    fn holds(&self, value: &Bytes, encode: impl FnOnce(&Object) -> Bytes) -> bool {
        match &self.stored {
            Some(stored) => stored == value,
            None => encode(&self.object) == value,
        }
    }
}

/// What one attempt of a write came to.
enum Attempt<T> {
    /// Storage settled it: the conditional write went through, or storage refused it for good.
    Settled(Result<T, ApiError>),
    /// Decided from the base alone (a refusal, a no-op, a dry run): the answer when the base is
    /// storage's; a guess is checked against storage first.
    Decided(Result<T, ApiError>),
    /// Storage holds a newer state than the base: try again from it.
    Retry(KeyValue),
}

/// The generic store of one resource.
pub struct Store {
    strategy: Arc<dyn Strategy>,
    storage: Arc<dyn Storage>,
    cache: Arc<WatchCache>,
    prefix: String,
    /// Whether the kind has `resource.Quantity` fields to canonicalize after validation.
    has_quantities: bool,
}

/// Attempts at a unique generated name before giving up (upstream retries since 1.30).
const GENERATE_NAME_ATTEMPTS: usize = 8;

impl Store {
    /// A store for the strategy's resource, with keys under `/registry/{resource}/`.
    pub fn new(
        storage: Arc<dyn Storage>,
        strategy: Arc<dyn Strategy>,
        cache_options: CacheOptions,
    ) -> Self {
        let prefix = format!("/registry/{}/", strategy.info().resource);
        let cache = WatchCache::start(
            storage.clone(),
            strategy.clone(),
            prefix.clone(),
            cache_options,
        );
        let has_quantities = ironplane_apimachinery::schema::has_quantities(strategy.schema());
        Store {
            strategy,
            storage,
            cache,
            prefix,
            has_quantities,
        }
    }

    /// The kind's strategy.
    pub fn strategy(&self) -> &Arc<dyn Strategy> {
        &self.strategy
    }

    /// The watch cache.
    pub fn cache(&self) -> &Arc<WatchCache> {
        &self.cache
    }

    fn group_resource(&self) -> GroupResource {
        self.strategy.info().group_resource()
    }

    /// The storage key of an object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        // Sized up front: a key is built for every request.
        let namespace = namespace.filter(|_| self.strategy.info().namespaced);
        let length = self.prefix.len() + namespace.map_or(0, |ns| ns.len() + 1) + name.len();
        let mut key = String::with_capacity(length);
        key.push_str(&self.prefix);
        if let Some(namespace) = namespace {
            key.push_str(namespace);
            key.push('/');
        }
        key.push_str(name);
        key
    }

    /// The key prefix of a list.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.strategy.info().namespaced) {
            Some(namespace) => format!("{}{namespace}/", self.prefix),
            None => self.prefix.clone(),
        }
    }

    fn storage_error(&self, err: StorageError, name: &str) -> ApiError {
        storage_error_to_status(err, &self.group_resource(), name)
    }

    /// Decode a stored value, stamping its resourceVersion.
    fn decode(&self, kv: &KeyValue) -> Result<Object, ApiError> {
        let mut object = Object::from_json(&kv.value).map_err(|err| {
            ApiError::internal(format!("stored object {} is unreadable: {err}", kv.key))
        })?;
        if self.strategy.converts() {
            object = self.strategy.stored_to_served(object);
        }
        object.metadata.resource_version = kv.mod_revision.to_string();
        Ok(object)
    }

    /// Encode an object for storage: its resourceVersion is the store's business, not the value's.
    fn encode(&self, object: &Object) -> Bytes {
        let converts = self.strategy.converts();
        if !converts && object.metadata.resource_version.is_empty() {
            return Bytes::from(object.to_json());
        }
        let mut stored = if converts {
            self.strategy.served_to_stored(object.clone())
        } else {
            object.clone()
        };
        stored.metadata.resource_version.clear();
        Bytes::from(stored.to_json())
    }

    /// Read one object. `resource_version`: absent or empty reads the latest from storage; "0"
    /// reads the cache; N reads the cache once it is at least that fresh.
    pub async fn get(
        &self,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<Object, ApiError> {
        let key = self.key(namespace, name);
        match resource_version.filter(|rv| !rv.is_empty()) {
            None => {
                let response = self
                    .storage
                    .get(&key, None)
                    .await
                    .map_err(|err| self.storage_error(err, name))?;
                match response.kv {
                    Some(kv) => self.decode(&kv),
                    None => Err(ApiError::not_found(&self.group_resource(), name)),
                }
            }
            Some(rv) => {
                let revision = parse_resource_version(rv)?;
                if revision > 0 {
                    self.cache.wait_until_fresh(revision).await?;
                }
                match self.cache.get(&key) {
                    Some(cached) => cached.decode(),
                    None => Err(ApiError::not_found(&self.group_resource(), name)),
                }
            }
        }
    }

    /// Create an object. The namespace has been checked against the request by the caller.
    pub async fn create(
        &self,
        object: Object,
        options: &CreateOptions,
    ) -> Result<Object, ApiError> {
        self.create_with_json(object, options)
            .await
            .map(|(object, _)| object)
    }

    /// Create an object, and also return its JSON with the resourceVersion set when it can be had
    /// without encoding the object again: the stored encoding with the revision spliced in, as the
    /// watch cache makes it (`None` on dry runs and for kinds served in another shape than
    /// stored). Saves the response one encoding of the whole object.
    pub async fn create_with_json(
        &self,
        mut object: Object,
        options: &CreateOptions,
    ) -> Result<(Object, Option<Vec<u8>>), ApiError> {
        let info = self.strategy.info();
        if !object.metadata.resource_version.is_empty() {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        object.api_version = info.api_version();
        object.kind = info.kind.clone();
        object.metadata.uid = new_uid();
        object.metadata.creation_timestamp = Some(now_rfc3339());
        object.metadata.deletion_timestamp = None;
        object.metadata.deletion_grace_period_seconds = None;
        let generate = object.metadata.name.is_empty() && !object.metadata.generate_name.is_empty();
        if generate {
            object.metadata.name = generate_name(&object.metadata.generate_name);
        }
        self.strategy.prepare_for_create(&mut object);
        self.validate_create(&object)?;
        self.canonicalize(&mut object);
        let ttl = self.strategy.ttl();
        let attempts = if generate { GENERATE_NAME_ATTEMPTS } else { 1 };
        for attempt in 1..=attempts {
            let key = self.key(Some(&object.metadata.namespace), &object.metadata.name);
            let result = if options.dry_run {
                match self.storage.get(&key, None).await {
                    Ok(response) if response.kv.is_some() => {
                        Err(StorageError::AlreadyExists { key })
                    }
                    Ok(_) => return Ok((object, None)),
                    Err(err) => Err(err),
                }
            } else {
                self.storage.create(&key, self.encode(&object), ttl).await
            };
            match result {
                Ok(kv) => {
                    object.metadata.resource_version = kv.mod_revision.to_string();
                    let json = (!self.strategy.converts())
                        .then(|| {
                            ironplane_apimachinery::object::splice_resource_version(
                                &kv.value,
                                kv.mod_revision,
                            )
                        })
                        .flatten();
                    return Ok((object, json));
                }
                Err(StorageError::AlreadyExists { .. }) if generate && attempt < attempts => {
                    object.metadata.name = generate_name(&object.metadata.generate_name);
                }
                Err(StorageError::AlreadyExists { key }) => {
                    let name = object.metadata.name.clone();
                    if generate {
                        return Err(ApiError::generate_name_conflict(
                            &self.group_resource(),
                            &name,
                        ));
                    }
                    let mut err = ApiError::already_exists(&self.group_resource(), &name);
                    if let Ok(existing) = self.storage.get(&key, None).await
                        && let Some(kv) = existing.kv
                        && self.decode(&kv)?.metadata.deletion_timestamp.is_some()
                    {
                        err.status.message =
                            format!("object is being deleted: {}", err.status.message);
                    }
                    return Err(err);
                }
                Err(err) => return Err(self.storage_error(err, &object.metadata.name)),
            }
        }
        Err(ApiError::generate_name_conflict(
            &self.group_resource(),
            &object.metadata.name,
        ))
    }

    fn validate_create(&self, object: &Object) -> Result<(), ApiError> {
        let info = self.strategy.info();
        let rule = self.strategy.name_rule();
        let meta_errors = || {
            validate_object_meta(
                &meta_fields(object),
                info.namespaced,
                |name, prefix| rule.check(name, prefix),
                &field::Path::new("metadata"),
            )
        };
        let errors = if self.strategy.validates_metadata() {
            let kind_errors = self.strategy.validate(object);
            if kind_errors.is_empty() {
                meta_errors()
            } else {
                kind_errors
            }
        } else {
            let mut errors = meta_errors();
            errors.extend(self.strategy.validate(object));
            errors
        };
        self.invalid_if_any(object, errors)
    }

    fn invalid_if_any(&self, object: &Object, errors: ErrorList) -> Result<(), ApiError> {
        if errors.is_empty() {
            return Ok(());
        }
        Err(invalid(
            &self.strategy.info().group_kind(),
            &object.metadata.name,
            &errors,
        ))
    }

    /// Update an object through `update`, which sees the current state and returns the desired
    /// one (a PUT returns the body; a patch applies itself to the current state). Conflicts with
    /// concurrent writers are retried when the desired state carries no resourceVersion.
    /// Returns the new state and whether it was created.
    pub async fn update<F>(
        &self,
        namespace: Option<&str>,
        name: &str,
        strategy: Option<&Arc<dyn Strategy>>,
        options: &UpdateOptions,
        mut update: F,
    ) -> Result<(Object, bool), ApiError>
    where
        F: FnMut(Option<&Object>) -> Result<Object, ApiError>,
    {
        let strategy = strategy.unwrap_or(&self.strategy).clone();
        let key = self.key(namespace, name);
        let mut base = self.first_base(&key, name, options.dry_run).await?;
        loop {
            let guessed = base.as_ref().is_some_and(Base::is_guess);
            let attempt = self
                .update_attempt(&key, name, &strategy, options, &mut update, base.take())
                .await;
            match self.after(&key, name, guessed, attempt).await {
                ControlFlow::Break(answer) => return answer,
                ControlFlow::Continue(next) => base = next,
            }
        }
    }

    /// One attempt of [`Store::update`] from `base`; an `Err` is an answer decided from the base.
    async fn update_attempt<F>(
        &self,
        key: &str,
        name: &str,
        strategy: &Arc<dyn Strategy>,
        options: &UpdateOptions,
        update: &mut F,
        base: Option<Base>,
    ) -> Result<Attempt<(Object, bool)>, ApiError>
    where
        F: FnMut(Option<&Object>) -> Result<Object, ApiError>,
    {
        let group_resource = self.group_resource();
        let Some(base) = base else {
            if !strategy.allow_create_on_update() {
                return Err(ApiError::not_found(&group_resource, name));
            }
            let desired = update(None)?;
            let created = self
                .create(
                    desired,
                    &CreateOptions {
                        dry_run: options.dry_run,
                    },
                )
                .await
                .map(|created| (created, true));
            return Ok(Attempt::Settled(created));
        };
        let old = &base.object;
        let mut desired = update(Some(old))?;
        let requested_rv = desired.metadata.resource_version.clone();
        if requested_rv.is_empty() {
            if !strategy.allow_unconditional_update() {
                return Err(invalid(
                    &strategy.info().group_kind(),
                    name,
                    &vec![field::Error::invalid(
                        &field::Path::new("metadata").child("resourceVersion"),
                        "",
                        "must be specified for an update",
                    )],
                ));
            }
            desired.metadata.resource_version = old.metadata.resource_version.clone();
        } else if requested_rv != old.metadata.resource_version {
            return Err(ApiError::stale_conflict(&group_resource, name));
        }
        if !desired.metadata.uid.is_empty() && desired.metadata.uid != old.metadata.uid {
            return Err(ApiError::conflict(
                &group_resource,
                name,
                &storage_precondition_message(
                    key,
                    &format!(
                        "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                        desired.metadata.uid, old.metadata.uid
                    ),
                ),
            ));
        }
        self.before_update(strategy.as_ref(), &mut desired, old)?;
        let unconditional = requested_rv.is_empty();
        let conflict = |now: Box<KeyValue>| {
            if unconditional {
                Attempt::Retry(*now)
            } else {
                Attempt::Settled(Err(ApiError::stale_conflict(&group_resource, name)))
            }
        };
        // The last finalizer removed from an object whose deletion was only waiting for
        // finalizers (grace period 0): the update completes the delete, as upstream's
        // ShouldDeleteDuringUpdate.
        if old.metadata.deletion_grace_period_seconds == Some(0)
            && old.metadata.deletion_timestamp.is_some()
            && desired.metadata.finalizers.is_empty()
        {
            if options.dry_run {
                return Ok(Attempt::Decided(Ok((desired, false))));
            }
            return Ok(
                match self.storage.delete(key, Some(base.mod_revision)).await {
                    Ok(_) => Attempt::Settled(Ok((desired, false))),
                    Err(StorageError::Conflict { current: now, .. }) => conflict(now),
                    Err(err) => Attempt::Settled(Err(self.storage_error(err, name))),
                },
            );
        }
        let value = self.encode(&desired);
        if base.holds(&value, |object| self.encode(object)) {
            // Nothing changed: no write, no new revision, as upstream.
            return Ok(Attempt::Decided(Ok((base.object, false))));
        }
        if options.dry_run {
            return Ok(Attempt::Decided(Ok((desired, false))));
        }
        Ok(
            match self
                .storage
                .update(key, value, base.mod_revision, strategy.ttl())
                .await
            {
                Ok(kv) => {
                    desired.metadata.resource_version = kv.mod_revision.to_string();
                    Attempt::Settled(Ok((desired, false)))
                }
                Err(StorageError::Conflict { current: now, .. }) => conflict(now),
                // Gone since the base was read: a guess is checked against storage (a kind that
                // allows create on update then creates it).
                Err(StorageError::NotFound { .. }) => {
                    Attempt::Decided(Err(ApiError::not_found(&group_resource, name)))
                }
                Err(err) => Attempt::Settled(Err(self.storage_error(err, name))),
            },
        )
    }

    /// The state a write starts from: the watch cache's copy as a first guess, as upstream's
    /// `cachedExistingObject` (the write is conditional on its revision, so a stale guess costs
    /// a retry, never a wrong write), else what storage holds. Dry runs write nothing that could
    /// refute a guess, so they read storage.
    async fn first_base(
        &self,
        key: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<Option<Base>, ApiError> {
        if !dry_run
            && self.cache.is_ready()
            && let Some(cached) = self.cache.get(key)
            && let Ok(object) = cached.decode()
        {
            return Ok(Some(Base {
                object,
                mod_revision: cached.revision,
                stored: None,
            }));
        }
        self.stored_base(key, name).await
    }

    /// What a write does after an attempt (an `Err` is an answer decided from the base): answer,
    /// or go again from storage's state (after a conflict, or to check a guess's answer).
    async fn after<T>(
        &self,
        key: &str,
        name: &str,
        guessed: bool,
        attempt: Result<Attempt<T>, ApiError>,
    ) -> ControlFlow<Result<T, ApiError>, Option<Base>> {
        let next = match attempt.unwrap_or_else(|error| Attempt::Decided(Err(error))) {
            Attempt::Settled(answer) => return ControlFlow::Break(answer),
            Attempt::Decided(answer) if !guessed => return ControlFlow::Break(answer),
            Attempt::Decided(_) => self.stored_base(key, name).await,
            Attempt::Retry(now) => self.base_of(now).map(Some),
        };
        match next {
            Ok(base) => ControlFlow::Continue(base),
            Err(error) => ControlFlow::Break(Err(error)),
        }
    }

    /// What storage holds at `key` now.
    async fn stored_base(&self, key: &str, name: &str) -> Result<Option<Base>, ApiError> {
        let kv = self
            .storage
            .get(key, None)
            .await
            .map_err(|err| self.storage_error(err, name))?
            .kv;
        kv.map(|kv| self.base_of(kv)).transpose()
    }

    fn base_of(&self, kv: KeyValue) -> Result<Base, ApiError> {
        Ok(Base {
            object: self.decode(&kv)?,
            mod_revision: kv.mod_revision,
            stored: Some(kv.value),
        })
    }

    fn before_update(
        &self,
        strategy: &dyn Strategy,
        desired: &mut Object,
        old: &Object,
    ) -> Result<(), ApiError> {
        let info = strategy.info();
        desired.api_version = info.api_version();
        desired.kind = info.kind.clone();
        desired.metadata.generation = old.metadata.generation;
        strategy.prepare_for_update(desired, old);
        if desired.metadata.uid.is_empty() {
            desired.metadata.uid = old.metadata.uid.clone();
        }
        if old.metadata.creation_timestamp.is_some() {
            desired.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
        }
        if old.metadata.deletion_timestamp.is_some() {
            desired.metadata.deletion_timestamp = old.metadata.deletion_timestamp.clone();
        }
        if old.metadata.deletion_grace_period_seconds.is_some()
            && desired.metadata.deletion_grace_period_seconds.is_none()
        {
            desired.metadata.deletion_grace_period_seconds =
                old.metadata.deletion_grace_period_seconds;
        }
        let rule = strategy.name_rule();
        let path = field::Path::new("metadata");
        let new_meta = meta_fields(desired);
        let mut errors = validate_object_meta(
            &new_meta,
            info.namespaced,
            |name, prefix| rule.check(name, prefix),
            &path,
        );
        errors.extend(validate_object_meta_update(
            &new_meta,
            &meta_fields(old),
            &path,
        ));
        errors.extend(strategy.validate_update(desired, old));
        self.invalid_if_any(desired, errors)?;
        self.canonicalize(desired);
        Ok(())
    }

    /// Quantities are validated as sent (errors print them as parsed) and stored canonical.
    fn canonicalize(&self, object: &mut Object) {
        if self.has_quantities {
            ironplane_apimachinery::schema::canonicalize_quantities(
                &mut object.fields,
                self.strategy.schema(),
            );
        }
    }

    /// Delete an object: at once, or by marking it when finalizers must run first.
    pub async fn delete(
        &self,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<DeleteResult, ApiError> {
        let key = self.key(namespace, name);
        let mut base = self.first_base(&key, name, options.dry_run).await?;
        loop {
            let guessed = base.as_ref().is_some_and(Base::is_guess);
            let attempt = self.delete_attempt(&key, name, options, base.take()).await;
            match self.after(&key, name, guessed, attempt).await {
                ControlFlow::Break(answer) => return answer,
                ControlFlow::Continue(next) => base = next,
            }
        }
    }

    /// One attempt of [`Store::delete`] from `base`; an `Err` is an answer decided from the base.
    async fn delete_attempt(
        &self,
        key: &str,
        name: &str,
        options: &DeleteOptions,
        base: Option<Base>,
    ) -> Result<Attempt<DeleteResult>, ApiError> {
        let group_resource = self.group_resource();
        let Some(base) = base else {
            return Err(ApiError::not_found(&group_resource, name));
        };
        let object = &base.object;
        let wrapped = self.strategy.wraps_precondition_errors().then_some(key);
        check_preconditions(
            &options.preconditions,
            object,
            &group_resource,
            name,
            wrapped,
        )?;
        self.strategy.check_delete(object)?;
        let mut marked = object.clone();
        let mut finalizers_added = false;
        match options.propagation_policy.as_deref() {
            Some("Foreground") => {
                finalizers_added |= add_finalizer(&mut marked, "foregroundDeletion")
            }
            Some("Orphan") => finalizers_added |= add_finalizer(&mut marked, "orphan"),
            _ => {}
        }
        let pending_strategy = self.strategy.prepare_for_delete(&mut marked);
        let keep = pending_strategy || !marked.metadata.finalizers.is_empty();
        if keep {
            if marked.metadata.deletion_timestamp.is_none() {
                marked.metadata.deletion_timestamp = Some(now_rfc3339());
                marked.metadata.deletion_grace_period_seconds = Some(0);
            }
            let value = self.encode(&marked);
            if !finalizers_added && base.holds(&value, |object| self.encode(object)) {
                return Ok(Attempt::Decided(Ok(DeleteResult::Pending(base.object))));
            }
            if options.dry_run {
                return Ok(Attempt::Decided(Ok(DeleteResult::Pending(marked))));
            }
            return Ok(
                match self
                    .storage
                    .update(key, value, base.mod_revision, self.strategy.ttl())
                    .await
                {
                    Ok(written) => {
                        marked.metadata.resource_version = written.mod_revision.to_string();
                        Attempt::Settled(Ok(DeleteResult::Pending(marked)))
                    }
                    Err(StorageError::Conflict { current: now, .. }) => Attempt::Retry(*now),
                    Err(err) => Attempt::Settled(Err(self.storage_error(err, name))),
                },
            );
        }
        if options.dry_run {
            return Ok(Attempt::Decided(Ok(DeleteResult::Deleted(base.object))));
        }
        Ok(
            match self.storage.delete(key, Some(base.mod_revision)).await {
                Ok(_) => Attempt::Settled(Ok(DeleteResult::Deleted(base.object))),
                Err(StorageError::Conflict { current: now, .. }) => Attempt::Retry(*now),
                Err(StorageError::NotFound { .. }) => {
                    Attempt::Settled(Err(ApiError::not_found(&group_resource, name)))
                }
                Err(err) => Attempt::Settled(Err(self.storage_error(err, name))),
            },
        )
    }

    /// Delete every object a list selects; returns what was deleted or marked.
    pub async fn delete_collection(
        &self,
        list: ListRequest,
        options: &DeleteOptions,
    ) -> Result<Vec<Object>, ApiError> {
        let page = self.list(list).await?;
        let mut deleted = Vec::with_capacity(page.items.len());
        for item in page.items {
            let object = item.decode()?;
            let namespace = (!object.metadata.namespace.is_empty())
                .then_some(object.metadata.namespace.as_str());
            match self.delete(namespace, &object.metadata.name, options).await {
                Ok(DeleteResult::Deleted(gone)) | Ok(DeleteResult::Pending(gone)) => {
                    deleted.push(gone)
                }
                Err(err) if err.code() == 404 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(deleted)
    }

    /// List objects (see [`ListRequest`]); served from the cache unless an older snapshot is
    /// needed.
    pub async fn list(&self, request: ListRequest) -> Result<ListResult, ApiError> {
        let list_prefix = self.list_prefix(request.namespace.as_deref());
        let rv = request
            .resource_version
            .as_deref()
            .filter(|rv| !rv.is_empty());
        let predicate = request.predicate.clone();
        let unfiltered = predicate.is_everything();
        let matches = move |object: &CachedObject| predicate.matches(object);
        if let Some(token) = request.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if rv.is_some() {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (start_key, revision) = continuation::decode(token, &list_prefix)
                .map_err(|err| ApiError::bad_request(format!("invalid continue token: {err}")))?;
            if revision < 0 {
                // An inconsistent continuation: the remainder at the latest revision.
                if !self.cache.is_ready() {
                    let current = self.current_revision().await?;
                    return self
                        .list_from_storage(
                            &list_prefix,
                            Some(start_key),
                            current,
                            request.limit,
                            &request.predicate,
                            true,
                        )
                        .await;
                }
                self.cache.wait_consistent().await?;
                let page = self.cache.list(
                    &list_prefix,
                    Some(&start_key),
                    request.limit,
                    &matches,
                    unfiltered,
                )?;
                return Ok(self.cache_result(page, &list_prefix));
            }
            if self.cache.revision() == revision {
                let page = self.cache.list(
                    &list_prefix,
                    Some(&start_key),
                    request.limit,
                    &matches,
                    unfiltered,
                )?;
                if page.revision == revision {
                    return Ok(self.cache_result(page, &list_prefix));
                }
            }
            return self
                .list_from_storage(
                    &list_prefix,
                    Some(start_key),
                    revision,
                    request.limit,
                    &request.predicate,
                    true,
                )
                .await;
        }
        let exact = match (request.version_match, rv, request.limit) {
            (Some(VersionMatch::Exact), _, _) => true,
            (None, Some(rv), Some(_)) => rv != "0",
            _ => false,
        };
        if !exact && !self.cache.is_ready() {
            // The cache is still loading (a large collection after a restart): read from storage,
            // as upstream does while its watch cache initializes, rather than keep the client
            // waiting. A resourceVersion newer than the store's waits for the cache below.
            let current = self.current_revision().await?;
            let wanted = match rv {
                Some(rv) if rv != "0" => parse_resource_version(rv)?,
                _ => 0,
            };
            if wanted <= current {
                return self
                    .list_from_storage(
                        &list_prefix,
                        None,
                        current,
                        request.limit,
                        &request.predicate,
                        false,
                    )
                    .await;
            }
        }
        match rv {
            None => self.cache.wait_consistent().await?,
            Some("0") => {}
            Some(rv) => {
                let revision = parse_resource_version(rv)?;
                if exact {
                    if self.cache.revision() != revision {
                        return self
                            .list_from_storage(
                                &list_prefix,
                                None,
                                revision,
                                request.limit,
                                &request.predicate,
                                false,
                            )
                            .await;
                    }
                } else {
                    self.cache.wait_until_fresh(revision).await?;
                }
            }
        }
        let page = self
            .cache
            .list(&list_prefix, None, request.limit, &matches, unfiltered)?;
        Ok(self.cache_result(page, &list_prefix))
    }

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision, ApiError> {
        self.storage
            .status()
            .await
            .map(|status| status.revision)
            .map_err(|err| self.storage_error(err, ""))
    }

    fn cache_result(&self, page: CacheListPage, list_prefix: &str) -> ListResult {
        let continue_token = page
            .next_key
            .as_deref()
            .and_then(|next| continuation::encode(next, list_prefix, page.revision));
        ListResult {
            items: page.items,
            revision: page.revision,
            remaining: page.remaining.map(|count| count as i64),
            continue_token,
        }
    }

    /// A list at an older revision, read page by page from storage until `limit` objects match.
    async fn list_from_storage(
        &self,
        list_prefix: &str,
        mut start_key: Option<String>,
        revision: Revision,
        limit: Option<usize>,
        predicate: &SelectionPredicate,
        continuing: bool,
    ) -> Result<ListResult, ApiError> {
        let batch = limit.map(|limit| limit.clamp(1, 10_000)).unwrap_or(10_000);
        let mut items = Vec::new();
        loop {
            let page = self
                .storage
                .list(
                    list_prefix,
                    StorageListOptions {
                        limit: Some(batch),
                        revision: Some(revision),
                        start_key: start_key.clone(),
                    },
                )
                .await;
            let page = match page {
                Ok(page) => page,
                Err(StorageError::Compacted { .. }) if continuing => {
                    let token = start_key
                        .as_deref()
                        .and_then(|key| continuation::encode(key, list_prefix, -1))
                        .unwrap_or_default();
                    return Err(ApiError::expired(CONTINUE_EXPIRED_MESSAGE).with_continue(token));
                }
                Err(StorageError::Compacted { .. }) => {
                    return Err(ApiError::expired(
                        "The resourceVersion for the provided list is too old.",
                    ));
                }
                Err(StorageError::FutureRevision { current, .. }) => {
                    return Err(crate::cacher::too_large_resource_version(revision, current));
                }
                Err(err) => return Err(self.storage_error(err, "")),
            };
            for kv in &page.kvs {
                let cached = self.cache.cache_value(kv, kv.mod_revision)?;
                if !predicate.matches(&cached) {
                    continue;
                }
                if limit.is_some_and(|limit| items.len() >= limit) {
                    let next = ironplane_storage::key_after(
                        &items
                            .last()
                            .map(|last: &Arc<CachedObject>| last.key.to_string())
                            .unwrap_or_default(),
                    );
                    return Ok(ListResult {
                        items,
                        revision,
                        continue_token: continuation::encode(&next, list_prefix, revision),
                        remaining: None,
                    });
                }
                items.push(Arc::new(cached));
            }
            match page.kvs.last() {
                Some(last) if page.more => {
                    start_key = Some(ironplane_storage::key_after(&last.key))
                }
                _ => {
                    return Ok(ListResult {
                        items,
                        revision,
                        continue_token: None,
                        remaining: None,
                    });
                }
            }
        }
    }

    /// Start a watch from the cache.
    pub async fn watch(
        &self,
        namespace: Option<&str>,
        predicate: SelectionPredicate,
        start: WatchStart,
        consistent: bool,
    ) -> Result<CacheWatcher, ApiError> {
        match start {
            WatchStart::InitialState if consistent => self.cache.wait_consistent().await?,
            WatchStart::After(revision) => self.cache.wait_until_fresh(revision).await?,
            WatchStart::InitialState => {}
        }
        let prefix = self.list_prefix(namespace);
        let watched = self.cache.watch(
            start,
            &prefix,
            Arc::new(move |object: &CachedObject| predicate.matches(object)),
        );
        match (watched, start) {
            (Err(err), WatchStart::After(revision)) if err.code() == 410 => {
                self.cache.watch_from_storage(revision, &prefix).await
            }
            (result, _) => result,
        }
    }
}

/// Upstream's message when a continue token's snapshot has been compacted away.
pub const CONTINUE_EXPIRED_MESSAGE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn add_finalizer(object: &mut Object, finalizer: &str) -> bool {
    if object.metadata.finalizers.iter().any(|f| f == finalizer) {
        return false;
    }
    object.metadata.finalizers.push(finalizer.to_owned());
    true
}

fn check_preconditions(
    preconditions: &Preconditions,
    object: &Object,
    group_resource: &GroupResource,
    name: &str,
    storage_key: Option<&str>,
) -> Result<(), ApiError> {
    let failed = |why: String| {
        let why = match storage_key {
            Some(key) => storage_precondition_message(key, &why),
            None => why,
        };
        ApiError::conflict(group_resource, name, &why)
    };
    if let Some(uid) = &preconditions.uid
        && *uid != object.metadata.uid
    {
        return Err(failed(format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            object.metadata.uid
        )));
    }
    if let Some(rv) = &preconditions.resource_version
        && *rv != object.metadata.resource_version
    {
        return Err(failed(format!(
            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
            object.metadata.resource_version
        )));
    }
    Ok(())
}

/// How upstream's storage layer words a failed precondition (an "invalid object" storage error
/// inside the Conflict message).
fn storage_precondition_message(key: &str, why: &str) -> String {
    format!(
        "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: {why}"
    )
}

/// The fields the metadata validators read.
pub fn meta_fields(object: &Object) -> ObjectMetaFields {
    use ironplane_apimachinery::validation::{ManagedFieldsEntry, OwnerReference};
    let meta = &object.metadata;
    ObjectMetaFields {
        name: meta.name.clone(),
        generate_name: meta.generate_name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        generation: meta.generation,
        creation_timestamp: meta.creation_timestamp.clone(),
        deletion_timestamp: meta.deletion_timestamp.clone(),
        deletion_grace_period_seconds: meta.deletion_grace_period_seconds,
        labels: meta.labels.clone(),
        annotations: meta.annotations.clone(),
        finalizers: meta.finalizers.clone(),
        owner_references: meta
            .owner_references
            .iter()
            .map(OwnerReference::from_json)
            .collect(),
        managed_fields: meta
            .managed_fields
            .iter()
            .map(ManagedFieldsEntry::from_json)
            .collect(),
    }
}

/// A 422 for a list of field errors.
pub fn invalid(
    kind: &ironplane_apimachinery::GroupKind,
    name: &str,
    errors: &ErrorList,
) -> ApiError {
    let causes = errors
        .iter()
        .map(|error| StatusCause {
            reason: error.error_type.reason().to_owned(),
            message: error.error_body(),
            field: error.field.clone(),
        })
        .collect();
    let aggregate = field::aggregate_message(errors).unwrap_or_default();
    ApiError::invalid(kind, name, causes, &aggregate)
}

/// Parse a resourceVersion parameter.
pub fn parse_resource_version(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<u64>()
        .ok()
        .and_then(|value| Revision::try_from(value).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid resource version: invalid resource version {}: strconv.ParseUint: parsing {}: invalid syntax",
                ironplane_apimachinery::status::go_quote(rv),
                ironplane_apimachinery::status::go_quote(rv)
            ))
        })
}

/// A random (version 4) UID. Its bytes come from the thread's cryptographic generator, not from
/// `Uuid::new_v4`'s system call per UID: on the create path that call showed in profiles.
fn new_uid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// A name from a generateName prefix: the prefix (cut to leave room) and five random characters
/// from upstream's alphabet (no vowels, so no words).
pub fn generate_name(prefix: &str) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    const MAX_PREFIX: usize = 63 - 5;
    let mut name = String::with_capacity(prefix.len().min(MAX_PREFIX) + 5);
    name.extend(prefix.chars().take(MAX_PREFIX));
    let mut rng = rand::rng();
    for _ in 0..5 {
        name.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    name
}

/// Map a storage failure to its Status.
pub fn storage_error_to_status(
    err: StorageError,
    resource: &GroupResource,
    name: &str,
) -> ApiError {
    match err {
        StorageError::NotFound { .. } => ApiError::not_found(resource, name),
        StorageError::AlreadyExists { .. } => ApiError::already_exists(resource, name),
        StorageError::Conflict { .. } => ApiError::stale_conflict(resource, name),
        StorageError::Compacted { .. } => {
            ApiError::expired("The resourceVersion for the provided list is too old.")
        }
        StorageError::ValueTooLarge { .. } => {
            ApiError::request_entity_too_large("limit is 3145728")
        }
        StorageError::Unavailable(why) => ApiError::timeout(&why, 0),
        other => ApiError::internal(other),
    }
}

/// Map a storage failure that concerns no particular object.
pub fn storage_error_to_status_plain(err: StorageError) -> ApiError {
    storage_error_to_status(err, &GroupResource::new("", ""), "")
}
