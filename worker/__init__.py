"""The worker side: runs actions for task attempts and reports their outcome.

Workers never import the scheduler; they speak only the messages in
:mod:`treadle.common.messages`.
"""
