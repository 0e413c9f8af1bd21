"""The workshop room: one JupyterHub for every attendee, and the instructor's view of it.

- ``spec``: what a room is (folder, ports, codes, instructors, limits), saved as JSON so the
  hub's config file and its services read the same facts.
- ``authenticator``: sign-in; the workshop code claims a new name, its owner chooses a password.
- ``jupyterhub_config``: the hub's config file, built from the spec; ``spawner``: its spawner
  (each attendee's server as their own system user); ``accounts``: those users, their homes
  and copies, the room folder's permissions; ``limits``: memory and CPU limits that hold.
- ``grid`` and ``instructor``: the room page (attendees × scenario stages).
- ``hub``: start and stop a room (``make hub`` / ``mlops-workshop hub``).
- ``remote``: run a notebook inside an attendee's server through the Jupyter server API.
"""
