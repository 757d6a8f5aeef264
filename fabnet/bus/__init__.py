"""The MQTT bus: topics (built only here), v1 message schemas, the paho client wrapper and the
Mosquitto configuration and process fabnet runs."""
