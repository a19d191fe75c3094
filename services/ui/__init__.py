"""tars-ui: a live web page of the robot (health, pose, conversation, traffic, controls).

:mod:`.service` wires it: :mod:`.view` folds the bus into what the page shows,
:mod:`.protocol` checks what a page sends, :mod:`.hub` queues frames per page,
:mod:`.controls` publishes the page's controls, :mod:`.web` serves it all over HTTP.
"""
