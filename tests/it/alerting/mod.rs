mod mute;
mod rules;
