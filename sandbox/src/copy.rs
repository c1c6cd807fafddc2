//! User-facing copy (the platform's localisation keys), kept in one place.
//!
//! Pages and the API take every visible text from here so that journeys and
//! checks can rely on the exact wording.

/// `cta.save`
pub const CTA_SAVE: &str = "Save";
/// `cta.align`
pub const CTA_ALIGN: &str = "Align Category";
/// `cta.validate`
pub const CTA_VALIDATE: &str = "Validate Feed";
/// `toast.saved`
pub const TOAST_SAVED: &str = "Saved successfully";
/// `toast.mapping_updated`
pub const TOAST_MAPPING_UPDATED: &str = "Mapping updated";
/// `banner.unmapped`
pub const BANNER_UNMAPPED: &str = "Some categories are not mapped to Google taxonomy";
/// `help.why_align`
pub const HELP_WHY_ALIGN: &str = "Why align? Improves approval rate on Google";

/// Sandbox-specific texts (not among the platform's localisation keys, but shown to users).
pub const LOGIN_ERROR: &str = "Invalid email or password";
pub const NAP_COMPLETE: &str = "NAP complete";
pub const PUSH_FEED: &str = "Push feed";
pub const NOT_MAPPED: &str = "Not mapped";

/// All the platform's localisation keys with their English text, in the platform's order.
pub const R7_KEYS: &[(&str, &str)] = &[
    ("cta.save", CTA_SAVE),
    ("cta.align", CTA_ALIGN),
    ("cta.validate", CTA_VALIDATE),
    ("toast.saved", TOAST_SAVED),
    ("toast.mapping_updated", TOAST_MAPPING_UPDATED),
    ("banner.unmapped", BANNER_UNMAPPED),
    ("help.why_align", HELP_WHY_ALIGN),
];

/// Profile validation messages (shown live in the page and returned by the API).
pub const ERR_NAME_REQUIRED: &str = "Business name is required";
pub const ERR_NAME_LENGTH: &str = "Business name must be 2 to 100 characters";
pub const ERR_ADDRESS_REQUIRED: &str = "Address is required";
pub const ERR_ADDRESS_LENGTH: &str = "Enter a full street address (5 to 200 characters)";
pub const ERR_PHONE_REQUIRED: &str = "Phone number is required";
pub const ERR_PHONE_INVALID: &str = "Enter a valid phone number (7 to 15 digits)";
pub const ERR_HOURS_LENGTH: &str = "Opening hours must be at most 200 characters";
