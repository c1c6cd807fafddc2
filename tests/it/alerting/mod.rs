mod flags;
mod mute;
mod rules;
